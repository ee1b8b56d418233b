"""Security headers on every response: what the browser may load, frame and send along.

The pages load only their own script and stylesheet (`/static`), images from the API and the
query preview as a ``data:`` URL, and post forms and fetches back to the service; the policy
allows exactly that. The API docs page (Swagger UI, served from the service itself so that it
works offline) starts with an inline bootstrap script, so it gets a policy of its own.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["APP_POLICY", "DOCS_POLICY", "SecurityHeadersMiddleware"]

APP_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Swagger UI from the service's own files (`service.main`): an inline bootstrap script and
#: inline styles; nothing from another host.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response; a header a route set itself is kept."""

    def __init__(self, app: ASGIApp, *, docs_path: str | None, hsts_seconds: int = 0) -> None:
        self.app = app
        self.docs_path = docs_path
        self.fixed = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if hsts_seconds > 0:
            # Only when the operator says the service is reached over HTTPS alone: a browser
            # that saw it refuses plain HTTP to this host for that long.
            self.fixed["Strict-Transport-Security"] = f"max-age={hsts_seconds}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"] == self.docs_path else APP_POLICY

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**self.fixed, "Content-Security-Policy": policy}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
