"""`artmatch worker`: runs the batch jobs the web service queues, in a process of its own.

Used when the service runs with ``ARTMATCH_WEB_JOB_WORKERS=0`` (as in docker-compose), so
that hours of listing checks never compete with interactive searches. Jobs are claimed from
the database atomically. The worker keeps its services (model, indexes, search filters)
from job to job; before each job they catch up with the catalogue by its version
(`Services.refresh`: one small SELECT when nothing changed, else only the photos added or
removed), so photos and thefts added through the service since the worker started are seen.
Each job is held under a lease renewed by a heartbeat: a job whose runner died is marked
failed once its lease runs out (``ARTMATCH_WEB_JOB_LEASE_S``), and a job another live process
runs is never touched, so several workers (and a service running jobs itself) can share one
database.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from engine.services import Services, build_services
from kernel.enums import JobStatus
from kernel.memory import keep_freed_memory
from kernel.settings import Settings, WebSettings
from kernel.threads import configure_threads
from service.jobs import JobRunner, listing_source
from service.operations.alerts import notify_alerts
from service.runtime import open_runtime
from storage.catalogue.jobs import Jobs

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    *,
    poll_seconds: float = 2.0,
    once: bool = False,
    services: Services | None = None,
    on_job: Callable[[str], None] | None = None,
    web: WebSettings | None = None,
) -> int:
    """Run queued jobs until stopped (SIGTERM/SIGINT) or, with ``once``, until none is
    queued; returns the number of jobs run."""
    web = web or WebSettings()
    configure_threads(settings.threads)
    keep_freed_memory(settings.keep_freed_mb)
    # Built once: between jobs the indexes catch up with the catalogue's changes in place
    # (`Services.refresh`), which reads only what changed; reopening them read every vector.
    services = services or build_services(settings)
    jobs = Jobs(services.catalogue.engine)
    # The accounts, subscriptions and webhooks the alerts of a job are sent by.
    runtime = open_runtime(settings, web)
    runner = JobRunner(
        jobs=jobs,
        services=lambda: services,
        reports_dir=settings.home / "reports",
        workers=1,
        stale=(JobStatus.RUNNING,),
        lease_s=web.job_lease_s,
        on_alerts=lambda alerts: notify_alerts(runtime, alerts),
    )
    runner.recover()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    done = 0
    try:
        while not stop.is_set():
            job = jobs.claim_next_job(owner=runner.owner)
            if job is None:
                if once:
                    break
                stop.wait(poll_seconds)
                continue
            # Another process (the service) may have changed the catalogue since.
            services.refresh()
            log.info("running job %s (%s)", job.id, job.manifest)
            manifest = Path(job.manifest)
            source = listing_source(
                manifest=manifest, username=job.username, uploads_dir=settings.home / "manifests"
            )
            runner.run(job.id, manifest, recheck=job.recheck, source=source)
            services.save_descriptors()
            done += 1
            if on_job:
                on_job(job.id)
    finally:
        runner.shutdown()
    return done
