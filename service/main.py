"""Assembles the app: lifespan (database at once, model and index in a worker thread),
middleware, error handlers, the API routers and the pages. Nothing else lives here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from kernel.i18n import install_jinja
from kernel.memory import keep_freed_memory
from kernel.settings import Settings, WebSettings, get_settings
from kernel.threads import configure_threads
from service.errors import document_errors, install_error_handlers
from service.headers import SecurityHeadersMiddleware
from service.jobs import JobRunner
from service.operations.alerts import notify_alerts
from service.pages import account as account_pages
from service.pages import admin as admin_pages
from service.pages import alerts as alert_pages
from service.pages import auth as auth_pages
from service.pages import cases as case_pages
from service.pages import catalogue as catalogue_pages
from service.pages import jobs as job_pages
from service.pages import search as search_pages
from service.routes import (
    accounts,
    alerts,
    cases,
    health,
    institutions,
    jobs,
    objects,
    photos,
    reports,
    searches,
)
from service.runtime import open_runtime
from service.security import prepare_password_checks
from service.uploads import BodyLimitMiddleware

if TYPE_CHECKING:
    from models.embedders import Embedder

__all__ = ["create_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def create_app(
    settings: Settings | None = None,
    *,
    web: WebSettings | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """The artmatch web app; ``embedder`` overrides the configured one (tests use a fake)."""
    web = web or WebSettings()
    # Here, in the thread that builds the app (OpenBLAS ignores a limit set from another
    # thread, and a test client runs the lifespan in one), and again in the lifespan.
    configure_threads((settings or get_settings()).threads)
    keep_freed_memory((settings or get_settings()).keep_freed_mb)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything computes: numpy's BLAS threads would fight torch and OpenCV.
        configure_threads((settings or get_settings()).threads)
        runtime = await run_in_threadpool(open_runtime, settings or get_settings(), web)
        await run_in_threadpool(prepare_password_checks)
        if web.job_workers > 0:
            jobs = JobRunner(
                jobs=runtime.jobs,
                services=runtime.require_services,
                reports_dir=runtime.reports_dir,
                workers=web.job_workers,
                lease_s=web.job_lease_s,
                on_alerts=lambda alerts: notify_alerts(runtime, alerts),
            )
            await run_in_threadpool(jobs.recover)
            runtime.job_runner = jobs
        app.state.runtime = runtime

        async def load() -> None:
            try:
                await run_in_threadpool(runtime.load_services, embedder)
            except Exception:
                log.exception("the model and index could not be loaded")

        loading = asyncio.create_task(load())
        try:
            yield
        finally:
            await loading
            await run_in_threadpool(runtime.close)

    app = FastAPI(
        title="artmatch",
        version="1",
        summary="Match photos of seized artworks against museum catalogues.",
        lifespan=lifespan,
        # Served below from the swagger-ui-bundle package: no CDN, so the docs work offline.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.add_middleware(BodyLimitMiddleware, limit=web.max_request_bytes)
    # Added last, so outermost of ours: the body limit's 413 carries the headers too.
    app.add_middleware(
        SecurityHeadersMiddleware, docs_path=DOCS_PATH, hsts_seconds=web.hsts_seconds
    )
    install_error_handlers(app)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    install_jinja(app.state.templates.env)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _serve_docs(app)
    for api in (
        health,
        accounts,
        institutions,
        objects,
        photos,
        searches,
        reports,
        jobs,
        cases,
        alerts,
    ):
        document_errors(api.router)
        app.include_router(api.router)
    for pages in (
        auth_pages,
        account_pages,
        catalogue_pages,
        search_pages,
        job_pages,
        admin_pages,
        case_pages,
        alert_pages,
    ):
        app.include_router(pages.router)
    return app


DOCS_PATH = "/api/docs"


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at `DOCS_PATH`, its script and stylesheet from the installed
    swagger-ui-bundle package rather than a CDN: a police network may have no internet."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount(
        f"{DOCS_PATH}/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets"
    )

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title="artmatch API",
            swagger_js_url=f"{DOCS_PATH}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_PATH}/assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
