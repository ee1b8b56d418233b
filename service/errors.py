"""HTTP-only errors and the one place that maps the `kernel.errors` tree to status codes.

ArtmatchError (kernel.errors)       -> status from STATUS below, JSON ErrorBody
├── Unauthenticated                   401 (pages: redirect to the login page)
├── Forbidden                         403
├── PayloadTooLarge                   413
└── UnsupportedMediaType              415

Whatever else goes wrong answers in the same shape: Starlette's HTTPException (404 for an
unknown URL, 405, the body limit's 413) and RequestValidationError (422) keep their status;
any other exception is a 500 ``internal_error`` whose body says nothing about the server (the
log has the traceback). `document_errors` lists in the OpenAPI document the answers each API
route can give, derived from what the route declares (so a new route is documented as it is
written).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import File
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute, APIRouter
from fastapi.utils import create_model_field
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
from service.schemas import ErrorBody

__all__ = [
    "Forbidden",
    "PayloadTooLarge",
    "Unauthenticated",
    "UnsupportedMediaType",
    "document_errors",
    "install_error_handlers",
    "public_message",
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


#: An absolute server path of two or more parts (not the path of a URL: no ':' or '/' before).
_SERVER_PATH = re.compile(r"(?<![\w.~:/-])(?:/[\w.@+~-]+)+/([\w.@+~-]+)/?")
_STORAGE_MESSAGE = "the catalogue storage failed underneath the service; the error is logged"


def public_message(exc: ArtmatchError) -> str:
    """What a client may read of ``exc``: server paths cut to their last part, and nothing of
    a storage failure (its text names database files, SQL and parameters; the log has it)."""
    if isinstance(exc, StorageError):
        return _STORAGE_MESSAGE
    return _SERVER_PATH.sub(r"\1", str(exc))


async def _artmatch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArtmatchError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    message = public_message(exc)
    if _wants_html(request):
        if status == 401:
            target = quote(
                str(request.url.path) + ("?" + request.url.query if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        from service.pages.rendering import render_error

        return render_error(request, status, message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(exc.code, message), status_code=status, headers=headers)


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


#: Codes for the HTTP errors Starlette raises itself, so clients can tell them apart.
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: PayloadTooLarge.code,
    415: UnsupportedMediaType.code,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _wants_html(request):
        from service.pages.rendering import render_error

        return render_error(request, exc.status_code, str(exc.detail))
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this for anything no other handler took; the
    # traceback goes to the log, never to the client (it names server paths and code).
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    message = "the server failed to answer this request; the error is logged"
    if _wants_html(request):
        from service.pages.rendering import render_error

        return render_error(request, 500, message)
    return JSONResponse(_body("internal_error", message), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArtmatchError, _artmatch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


_DESCRIPTIONS = {
    401: "No valid API token or session",
    403: "The caller's role may not do this (or a missing CSRF token)",
    404: "No such object, photo, search, job, account or institution",
    409: "Conflicts with what is stored (a duplicate id, an object still in use)",
    413: "The request body or a file is larger than the limit",
    415: "A file's content type is not an accepted type",
    422: "A parameter, field, file or manifest is invalid",
    503: "The model and index are still loading, or storage failed",
}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _errors_of(route: APIRoute) -> set[int]:
    """The error statuses ``route`` can answer, from what it declares: an account dependency
    (401, 403), path parameters (404), parameters or a body (422), a body (413), files (415),
    a write (409), the services (503)."""
    parts = _dependants(route.dependant)
    calls = {getattr(d.call, "__name__", "") for d in parts}
    path = [p for d in parts for p in d.path_params]
    query = [p for d in parts for p in d.query_params]
    body = [p for d in parts for p in d.body_params]
    codes: set[int] = set()
    if any(name.startswith("require_") for name in calls):
        codes |= {401, 403}
    if path:
        codes.add(404)
    if path or query or body:
        codes.add(422)
    if body:
        codes.add(413)
    if any(isinstance(p.field_info, File) for p in body):
        codes.add(415)
    if (route.methods or set()) & _WRITES:
        codes.add(409)
    if "get_services" in calls:
        codes.add(503)
    return codes


def _dependants(dependant: Any) -> list[Any]:
    found = [dependant]
    for sub in dependant.dependencies:
        found += _dependants(sub)
    return found


def document_errors(router: APIRouter) -> None:
    """Declare on every route of ``router`` the error answers it can give, all with
    `ErrorBody`; call it before the router is included (FastAPI builds the included routes
    from these). Routes keep the answers they declare themselves."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for status in sorted(_errors_of(route) - set(route.responses)):
            route.responses[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
            # FastAPI builds the schema fields of declared responses when the route is made;
            # one added later needs its field too, or the OpenAPI document has no schema.
            route.response_fields[status] = create_model_field(
                name=f"Response_{status}_{route.unique_id}", type_=ErrorBody, mode="serialization"
            )
