"""Dependencies handed to route handlers: the runtime, the services and the caller's account.

Every route declares who may call it with one of the role aliases at the bottom
(``user: Investigator``); an anonymous caller gets 401, a wrong role 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.services import Services
from kernel.enums import Role, TokenKind
from service.errors import Forbidden, Unauthenticated
from service.runtime import Runtime
from service.security import csrf_matches, token_sha256
from storage.catalogue.accounts import AccountRecord

__all__ = [
    "SESSION_COOKIE",
    "Admin",
    "Analyst",
    "Anyone",
    "Auditor",
    "CatalogueReader",
    "Investigator",
    "Principal",
    "Registrar",
    "RuntimeDep",
    "ServicesDep",
    "require",
]

SESSION_COOKIE = "artmatch_session"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

_bearer = HTTPBearer(auto_error=False, description="An API token (`artmatch create-token`).")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_services(runtime: RuntimeDep) -> Services:
    return runtime.require_services()


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Principal:
    account: AccountRecord
    #: The browser session token when logged in through the pages, else None.
    session: str | None = None

    @property
    def role(self) -> Role:
        return self.account.role

    @property
    def csrf(self) -> str | None:
        from service.security import csrf_for

        return csrf_for(self.session) if self.session else None

    def may_manage(self, institution: str) -> bool:
        return self.role is Role.REGISTRAR and self.account.institution == institution

    def may_read(self, institution: str) -> bool:
        if self.role is Role.REGISTRAR:
            return self.account.institution == institution
        return self.role in (Role.INVESTIGATOR, Role.ANALYST)


async def current_principal(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is not None:
        account = runtime.accounts.account_for_token(
            token_sha256(credentials.credentials), kind=TokenKind.API
        )
        if account is None:
            raise Unauthenticated("the API token is unknown, revoked or expired")
        return Principal(account)
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        account = runtime.accounts.account_for_token(token_sha256(session), kind=TokenKind.SESSION)
        if account is not None:
            if request.method not in _SAFE_METHODS:
                await _check_csrf(request, session)
            return Principal(account, session=session)
    raise Unauthenticated("log in, or send an API token as 'Authorization: Bearer <token>'")


async def _check_csrf(request: Request, session: str) -> None:
    candidate = request.headers.get("x-csrf-token")
    if candidate is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        candidate = value if isinstance(value, str) else None
    if not csrf_matches(session, candidate):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency admitting only accounts with one of ``roles`` (any role if none given)."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if roles and principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this needs the role {allowed}; you are {principal.role.value}")
        return principal

    dependency.__name__ = "require_" + "_or_".join(r.value for r in roles or Role)
    return dependency


Anyone = Annotated[Principal, Depends(require())]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]
Investigator = Annotated[Principal, Depends(require(Role.INVESTIGATOR))]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]
#: Who may browse objects and their photos (registrars: their own institution's only).
CatalogueReader = Annotated[
    Principal, Depends(require(Role.REGISTRAR, Role.INVESTIGATOR, Role.ANALYST))
]
#: Who may list institutions (everyone but the auditor).
InstitutionReader = Annotated[
    Principal,
    Depends(require(Role.REGISTRAR, Role.INVESTIGATOR, Role.ANALYST, Role.ADMIN)),
]
