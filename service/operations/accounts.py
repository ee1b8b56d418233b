"""Accounts (admins), the caller's own API tokens and password (anyone), and browser sessions
(login, throttled by `service.security.LoginGuard`).

Token creation, account creation and changes, and password changes are chained in the audit
log with who did them and to whom: an admin minting a token for an investigator shows as such.
A new password revokes every session and API token of the account.
"""

from __future__ import annotations

import datetime as dt

from kernel.enums import TokenKind
from kernel.errors import InvalidInput
from kernel.i18n import LOCALES, N_
from service import policy
from service.deps import Principal
from service.operations.catalogue import check_institution
from service.policy import Action
from service.runtime import Runtime
from service.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    Whoami,
)
from service.security import hash_password, new_token, token_sha256, verify_password
from storage.catalogue.accounts import AccountRecord

__all__ = [
    "account_public",
    "change_own_password",
    "create_account",
    "issue_own_token",
    "issue_token",
    "list_accounts",
    "log_in",
    "log_out",
    "set_own_language",
    "revoke_own_token",
    "session_account",
    "tokens_of",
    "update_account",
    "whoami",
]


def account_public(a: AccountRecord) -> AccountPublic:
    # Reads the declared fields only: the password hash never leaves the storage layer.
    return AccountPublic.model_validate(a, from_attributes=True)


def whoami(principal: Principal) -> Whoami:
    return Whoami(**account_public(principal.account).model_dump())


def tokens_of(rt: Runtime, principal: Principal) -> list[TokenPublic]:
    return [
        TokenPublic(id=i, name=n, created_at=c, expires_at=e)
        for i, n, c, e in rt.accounts.tokens_of(principal.account.id)
    ]


def revoke_own_token(rt: Runtime, principal: Principal, token_id: int) -> None:
    rt.accounts.delete_token(token_id=token_id, account_id=principal.account.id)


def issue_own_token(rt: Runtime, principal: Principal, body: TokenCreate) -> TokenCreated:
    return _issue_token(rt, principal, principal.account, body)


def issue_token(
    rt: Runtime, principal: Principal, account_id: int, body: TokenCreate
) -> TokenCreated:
    """A new API token for an account (404 for an unknown one), e.g. a script's."""
    return _issue_token(rt, principal, rt.accounts.get(account_id), body)


def _issue_token(
    rt: Runtime, principal: Principal, account: AccountRecord, body: TokenCreate
) -> TokenCreated:
    """The token is shown in this answer only; the database keeps its SHA-256."""
    token, digest = new_token()
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(days=body.expires_days) if body.expires_days else None
    token_id = rt.accounts.add_token(
        account_id=account.id, name=body.name, token_sha256=digest, expires_at=expires
    )
    rt.audit.append(
        actor=principal.account.username,
        action="token_create",
        subject=f"account {account.username}",
        details={
            "token_id": token_id,
            "name": body.name,
            "for": account.username,
            "role": account.role.value,
            "expires_at": expires.isoformat() if expires else None,
        },
    )
    return TokenCreated(
        id=token_id, name=body.name, created_at=now, expires_at=expires, token=token
    )


def list_accounts(rt: Runtime) -> list[AccountPublic]:
    return [account_public(a) for a in rt.accounts.list_accounts()]


def create_account(rt: Runtime, principal: Principal, body: AccountCreate) -> AccountPublic:
    bound = policy.needs_institution(body.role)
    if bound and not body.institution:
        raise InvalidInput(f"a {body.role.value} needs an institution")
    if bound and body.institution:
        check_institution(rt, body.institution, create=body.create_institution)
    account = rt.accounts.create_account(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        institution=body.institution if bound else None,
    )
    rt.audit.append(
        actor=principal.account.username,
        action="account_create",
        subject=f"account {account.username}",
        details={"role": account.role.value, "institution": account.institution},
    )
    return account_public(account)


def update_account(
    rt: Runtime, principal: Principal, account_id: int, body: AccountUpdate
) -> AccountPublic:
    """Disable or enable an account, change its role or institution, or reset its password;
    disabling it or a new password ends its sessions and revokes its API tokens."""
    if account_id == principal.account.id and (
        body.active is False or (body.role is not None and not policy.may(body.role, Action.ADMIN))
    ):
        raise InvalidInput(N_("an admin cannot lock themselves out; ask another admin"))
    _check_language(body.language)
    before = rt.accounts.get(account_id)
    role = body.role
    if (
        role is not None
        and policy.needs_institution(role)
        and not (body.institution or before.institution)
    ):
        raise InvalidInput(f"a {role.value} needs an institution")
    if body.institution is not None and body.institution != before.institution:
        check_institution(rt, body.institution, create=body.create_institution)
    account = rt.accounts.update_account(
        account_id,
        password_hash=hash_password(body.password) if body.password else None,
        active=body.active,
        role=role,
        institution=body.institution,
        language=body.language,
    )
    changes: dict[str, object] = {}
    if body.language is not None and (body.language or None) != before.language:
        changes["language"] = [before.language, body.language or None]
    if body.active is not None and body.active != before.active:
        changes["active"] = body.active
    if role is not None and role != before.role:
        changes["role"] = [before.role.value, role.value]
    if body.institution is not None and body.institution != before.institution:
        changes["institution"] = [before.institution, body.institution]
    if body.password:
        changes["password"] = "reset; sessions and API tokens revoked"
    rt.audit.append(
        actor=principal.account.username,
        action="password_reset" if body.password else "account_update",
        subject=f"account {account.username}",
        details=changes,
    )
    return account_public(account)


def _check_language(language: str | None) -> None:
    if language and language not in LOCALES:
        raise InvalidInput(f"unknown language {language!r}; choose one of {', '.join(LOCALES)}")


def set_own_language(rt: Runtime, principal: Principal, language: str) -> AccountPublic:
    """The caller's own language for the pages and reports ("" follows the browser again); a
    preference, not a change of rights, so it is not chained in the audit log."""
    _check_language(language)
    return account_public(rt.accounts.update_account(principal.account.id, language=language))


def change_own_password(rt: Runtime, principal: Principal, body: PasswordChange) -> None:
    """Change the caller's password (the current one must be right); every session and API
    token of the account ends, the caller's own included."""
    account = principal.account
    username = account.username
    rt.login_guard.check(username=username, address=None)
    with rt.login_guard.password_check():
        ok = verify_password(account.password_hash, body.current_password)
    if not ok:
        rt.login_guard.failed(username=username, address=None)
        raise InvalidInput("the current password is wrong")
    rt.accounts.update_account(account.id, password_hash=hash_password(body.new_password))
    rt.audit.append(
        actor=username,
        action="password_change",
        subject=f"account {username}",
        details={"sessions and API tokens": "revoked"},
    )


# -- browser sessions ----------------------------------------------------------------------


def session_account(rt: Runtime, session: str | None) -> AccountRecord | None:
    """The account a session cookie belongs to (None: no cookie, or an unknown/expired one)."""
    if not session:
        return None
    return rt.accounts.account_for_token(token_sha256(session), kind=TokenKind.SESSION)


def log_in(
    rt: Runtime, username: str, password: str, *, address: str | None
) -> tuple[AccountRecord, str] | None:
    """(account, new session token) for a right password of an active account, else None.

    Raises `LoginRefused` while the name or ``address`` is throttled, before any password is
    checked. An unknown name costs a password check too, so timing does not tell which names
    exist."""
    guard = rt.login_guard
    guard.check(username=username, address=address)
    account = rt.accounts.by_username(username.strip())
    with guard.password_check():
        ok = verify_password(account.password_hash if account else None, password)
    if account is None or not ok or not account.active:
        guard.failed(username=username, address=address)
        return None
    guard.succeeded(username=username, address=address)
    token, digest = new_token("ses")
    rt.accounts.add_token(
        account_id=account.id,
        name="browser login",
        kind=TokenKind.SESSION,
        token_sha256=digest,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=rt.web.session_hours),
    )
    return account, token


def log_out(rt: Runtime, principal: Principal) -> None:
    if principal.session:
        rt.accounts.delete_token(token_sha256=token_sha256(principal.session))
