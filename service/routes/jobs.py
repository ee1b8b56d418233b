"""Batch listing checks (analysts): submit a manifest, poll the job, download the report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from service.deps import MayReadJobs, MayRunJobs, RuntimeDep, ServicesDep
from service.operations import job_hits
from service.operations import jobs as ops
from service.pages.rendering import translator_for
from service.schemas import JobPublic
from service.uploads import read_upload

router = APIRouter(prefix="/api/v1/jobs", tags=["batch jobs"])

_MANIFEST_TYPES = (
    "text/csv",
    "text/plain",
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/vnd.ms-excel",
)


@router.post(
    "",
    response_model=JobPublic,
    status_code=202,
    summary="Check auction listings against lost objects, in the background (role: analyst)",
)
async def create_job(
    user: MayRunJobs,
    runtime: RuntimeDep,
    manifest: Annotated[
        UploadFile | None, File(description="Manifest CSV/JSONL: listing_id, image, ...")
    ] = None,
    images: Annotated[
        list[UploadFile] | None, File(description="The listing photos the manifest names")
    ] = None,
    manifest_path: Annotated[
        str | None, Form(max_length=2000, description="Or: a manifest already on the server")
    ] = None,
    recheck: Annotated[bool, Form()] = False,
    case_id: Annotated[
        int | None, Form(ge=1, le=2**63 - 1, description="Attach the check to this case")
    ] = None,
) -> JobPublic:
    limit = runtime.settings.max_upload_bytes
    upload = None
    if manifest is not None and manifest.filename:
        data = await read_upload(manifest, limit=limit, kind="manifest", allowed=_MANIFEST_TYPES)
        upload = (manifest.filename, data)
    files = [
        (f.filename or f"image{i}", await read_upload(f, limit=limit))
        for i, f in enumerate(images or [])
        if f.filename
    ]
    return await run_in_threadpool(
        lambda: ops.submit_job(
            runtime,
            user,
            manifest_path=manifest_path or None,
            upload=upload,
            images=files,
            recheck=recheck,
            case_id=case_id,
        )
    )


@router.get(
    "",
    response_model=list[JobPublic],
    summary="Recent jobs: an analyst's own, every one for the admin (role: analyst, admin)",
)
def list_jobs(user: MayReadJobs, runtime: RuntimeDep) -> list[JobPublic]:
    return ops.list_jobs(runtime, user)


@router.get(
    "/{job_id}", response_model=JobPublic, summary="Progress of a job (role: its analyst, admin)"
)
def get_job(job_id: str, user: MayReadJobs, runtime: RuntimeDep) -> JobPublic:
    return ops.get_job(runtime, user, job_id)


@router.get(
    "/{job_id}/report.csv",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}},
    summary="Hit report, CSV (role: its analyst, admin)",
)
def report_csv(job_id: str, user: MayReadJobs, runtime: RuntimeDep) -> FileResponse:
    path = ops.report_path(runtime, user, job_id, "csv")
    return FileResponse(path, media_type="text/csv", filename=f"hits-{job_id}.csv")


@router.get(
    "/{job_id}/report.json",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}}},
    summary="Hit report with errors and settings, JSON (role: its analyst, admin)",
)
def report_json(job_id: str, user: MayReadJobs, runtime: RuntimeDep) -> FileResponse:
    path = ops.report_path(runtime, user, job_id, "json")
    return FileResponse(path, media_type="application/json", filename=f"hits-{job_id}.json")


_Image = Annotated[
    str, Query(min_length=1, max_length=1000, description="The listing's image, as in the report")
]


@router.get(
    "/{job_id}/listing-photo",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
    summary="Thumbnail of a listing photo of one of the job's hits (role: its analyst, admin)",
)
async def listing_photo(
    job_id: str, image: _Image, user: MayReadJobs, runtime: RuntimeDep
) -> Response:
    data = await job_hits.listing_thumbnail(runtime, user, job_id, image)
    return Response(content=data, media_type="image/jpeg", headers={"Cache-Control": "private"})


@router.get(
    "/{job_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="Evidence picture: a hit's listing photo beside the object's best-matching photo "
    "(role: its analyst; logged)",
)
async def listing_evidence(
    job_id: str,
    image: _Image,
    object_id: Annotated[str, Query(min_length=1, max_length=200)],
    user: MayReadJobs,
    runtime: RuntimeDep,
    services: ServicesDep,
    request: Request,
) -> Response:
    png = await job_hits.listing_evidence(
        runtime,
        services,
        user,
        job_id=job_id,
        image=image,
        object_id=object_id,
        translator=translator_for(request, user),
    )
    return Response(content=png, media_type="image/png")
