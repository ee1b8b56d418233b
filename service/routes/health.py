"""Liveness and readiness probes (public: they reveal nothing but whether the service runs)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import RuntimeDep
from service.schemas import Health, Readiness

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="Alive (role: public)")
def health() -> Health:
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Model and index loaded (role: public)",
)
def ready(runtime: RuntimeDep) -> Readiness | JSONResponse:
    services = runtime.services
    if services is None:
        body = Readiness(ready=False, message=runtime.load_error or "loading the model and index")
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(
        ready=True,
        model=f"{services.embedder.name} {services.embedder.version}",
        indexed_photos=services.index.size,
    )
