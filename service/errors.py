"""HTTP-only errors and the one place that maps the `kernel.errors` tree to status codes.

ArtmatchError (kernel.errors)       -> status from STATUS below, JSON ErrorBody
├── Unauthenticated                   401 (pages: redirect to the login page)
├── Forbidden                         403
├── PayloadTooLarge                   413
└── UnsupportedMediaType              415
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.errors import (
    ArtmatchError,
    ConfigError,
    Conflict,
    IndexNotReady,
    InvalidImage,
    InvalidInput,
    NotFound,
    StorageError,
)

__all__ = [
    "Forbidden",
    "PayloadTooLarge",
    "Unauthenticated",
    "UnsupportedMediaType",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class Unauthenticated(ArtmatchError):
    code = "unauthenticated"


class Forbidden(ArtmatchError):
    code = "forbidden"


class PayloadTooLarge(ArtmatchError):
    code = "payload_too_large"


class UnsupportedMediaType(ArtmatchError):
    code = "unsupported_media_type"


STATUS: dict[type[ArtmatchError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    InvalidImage: 422,
    InvalidInput: 422,
    IndexNotReady: 503,
    StorageError: 503,
    ConfigError: 500,
}


def status_of(exc: ArtmatchError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _body(code: str, message: str, detail: object = None) -> dict[str, object]:
    return {"error": code, "message": message, "detail": detail}


async def _artmatch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArtmatchError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    if _wants_html(request):
        if status == 401:
            target = quote(
                str(request.url.path) + ("?" + request.url.query if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        from service.pages.rendering import render_error

        return render_error(request, status, str(exc))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(exc.code, str(exc)), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    if _wants_html(request):
        from service.pages.rendering import render_error

        return render_error(request, 422, "; ".join(parts))
    return JSONResponse(
        _body("invalid_request", "; ".join(parts) or "invalid request", detail), status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _wants_html(request):
        from service.pages.rendering import render_error

        return render_error(request, exc.status_code, str(exc.detail))
    return JSONResponse(
        _body("http_error", str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArtmatchError, _artmatch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
