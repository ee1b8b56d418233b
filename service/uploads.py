"""Reading uploaded files with the limits the service promises: type (415) and size (413)."""

from __future__ import annotations

from typing import Literal

from fastapi import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, UnsupportedMediaType

__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "read_upload"]

_CHUNK = 1 << 20
#: Browsers and phones label photos image/*; scripts often send no useful type at all.
_IMAGE_TYPES = ("image/",)
_GENERIC_TYPES = {"application/octet-stream", "", None}


async def read_upload(
    upload: UploadFile,
    *,
    limit: int,
    kind: Literal["image", "manifest"] = "image",
    allowed: tuple[str, ...] = (),
) -> bytes:
    """The file's bytes, or 415 for a type that is not ``kind``, 413 past ``limit`` bytes."""
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    ok = ctype in _GENERIC_TYPES or (
        ctype.startswith(_IMAGE_TYPES) if kind == "image" else ctype in allowed
    )
    if not ok:
        raise UnsupportedMediaType(
            f"{upload.filename or 'upload'}: content type {ctype!r} is not an accepted {kind} type",
        )
    chunks, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"{upload.filename or 'upload'}: larger than the limit of {limit:,} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class BodyTooLarge(HTTPException):
    """A streamed body passed the limit while being read.

    An HTTPException, not a `PayloadTooLarge`: FastAPI turns anything else raised while it
    reads a body into "400 error parsing the body", but lets HTTPExceptions through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the limit of {limit:,} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 before reading them, and stop
    reading a body without a Content-Length (chunked) once it passes the limit: counting the
    bytes as they arrive, so the declared length is never trusted alone."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            # Read outside a route (a middleware, a form parsed by a dependency that no
            # handler caught): answer here, unless an answer is already under way.
            if started:
                raise
            await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    import json

    body = json.dumps(
        {
            "error": PayloadTooLarge.code,
            "message": f"request body larger than the limit of {limit:,} bytes",
            "detail": None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
