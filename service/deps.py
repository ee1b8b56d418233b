"""Dependencies handed to route handlers: the runtime, the services and the caller's account.

Every route declares the action it performs with one of the aliases at the bottom
(``user: MaySearch``); `service.policy` decides which roles may take it. An anonymous caller
gets 401, a role the policy does not allow 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.services import Services
from kernel.enums import Role, TokenKind
from service import policy
from service.errors import Forbidden, Unauthenticated
from service.policy import Action
from service.runtime import Runtime
from service.security import csrf_for, csrf_matches, token_sha256
from storage.catalogue.accounts import AccountRecord

__all__ = [
    "SESSION_COOKIE",
    "Anyone",
    "MayAdminister",
    "MayAudit",
    "MayFollowAlerts",
    "MayListInstitutions",
    "MayManageObjects",
    "MayReadObjects",
    "MayReadJobs",
    "MayRunJobs",
    "MaySearch",
    "Principal",
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
        return csrf_for(self.session) if self.session else None

    def may(self, action: Action) -> bool:
        return policy.may(self.role, action)

    def may_on(self, action: Action, institution: str) -> bool:
        """Whether the caller may take ``action`` on an object of ``institution``."""
        return policy.may_on(self.role, self.account.institution, action, institution)

    @property
    def institution_scope(self) -> str | None:
        """The institution the caller is confined to; None: every catalogue."""
        return policy.institution_scope(self.role, self.account.institution)


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


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only accounts whose role `service.policy` allows ``action``."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.may(action):
            allowed = ", ".join(r.value for r in policy.allowed_roles(action))
            raise Forbidden(f"this needs the role {allowed}; you are {principal.role.value}")
        return principal

    dependency.__name__ = f"require_{action.value}"
    return dependency


Anyone = Annotated[Principal, Depends(require(Action.OWN_ACCOUNT))]
MayReadObjects = Annotated[Principal, Depends(require(Action.READ_OBJECTS))]
MayManageObjects = Annotated[Principal, Depends(require(Action.MANAGE_OBJECTS))]
MayListInstitutions = Annotated[Principal, Depends(require(Action.LIST_INSTITUTIONS))]
MaySearch = Annotated[Principal, Depends(require(Action.SEARCH))]
MayRunJobs = Annotated[Principal, Depends(require(Action.RUN_JOBS))]
MayReadJobs = Annotated[Principal, Depends(require(Action.READ_JOBS))]
MayFollowAlerts = Annotated[Principal, Depends(require(Action.ALERTS))]
MayAudit = Annotated[Principal, Depends(require(Action.AUDIT))]
MayAdminister = Annotated[Principal, Depends(require(Action.ADMIN))]
