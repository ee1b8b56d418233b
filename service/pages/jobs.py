"""The analyst's batch-check pages (the page script submits through the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.deps import MayRunJobs, RuntimeDep
from service.operations import alerts as alert_ops
from service.operations import cases, job_hits
from service.operations import jobs as ops
from service.pages.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/jobs", response_class=HTMLResponse, summary="Batch checks (role: analyst)")
def jobs_page(request: Request, user: MayRunJobs, runtime: RuntimeDep) -> HTMLResponse:
    jobs = ops.list_jobs(runtime, user)
    return render(
        request,
        "jobs.html",
        user,
        jobs=jobs,
        # The count each job's page shows: the rows of its hits table.
        hit_counts={j.id: job_hits.hit_count(runtime, user, j.id) for j in jobs},
        # The cases a batch check may be attached to (shared with the analyst to change).
        cases=cases.writable_cases(runtime, user),
    )


@router.get(
    "/jobs/{job_id}", response_class=HTMLResponse, summary="One batch check (role: analyst)"
)
def job_page(request: Request, job_id: str, user: MayRunJobs, runtime: RuntimeDep) -> HTMLResponse:
    job = ops.get_job(runtime, user, job_id)
    earlier = {}
    hits: list[job_hits.HitRow] = []
    if job.report_json_url:
        report = ops.report_path(runtime, user, job_id, "json")
        earlier = alert_ops.job_earlier_appearances(runtime, user, report)
        hits = job_hits.hit_rows(runtime, user, job_id)
    return render(request, "job.html", user, job=job, earlier=earlier, hits=hits)
