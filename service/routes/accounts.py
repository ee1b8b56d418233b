"""Accounts (admin) and the caller's own identity and API tokens (any role)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from kernel.errors import InvalidInput
from service import policy
from service.deps import Anyone, MayAdminister, RuntimeDep
from service.policy import Action
from service.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    Deleted,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    Whoami,
)
from service.security import hash_password, new_token
from storage.catalogue.accounts import AccountRecord

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _public(a: AccountRecord) -> AccountPublic:
    return AccountPublic(
        id=a.id,
        username=a.username,
        role=a.role,
        institution=a.institution,
        active=a.active,
        created_at=a.created_at,
    )


@router.get("/me", response_model=Whoami, summary="Who am I (role: any)")
def me(user: Anyone) -> Whoami:
    return Whoami(**_public(user.account).model_dump())


@router.get("/me/tokens", response_model=list[TokenPublic], summary="My API tokens (role: any)")
def my_tokens(user: Anyone, runtime: RuntimeDep) -> list[TokenPublic]:
    return [
        TokenPublic(id=i, name=n, created_at=c, expires_at=e)
        for i, n, c, e in runtime.accounts.tokens_of(user.account.id)
    ]


@router.post(
    "/me/tokens", response_model=TokenCreated, status_code=201, summary="New API token (role: any)"
)
def create_my_token(body: TokenCreate, user: Anyone, runtime: RuntimeDep) -> TokenCreated:
    return issue_token(runtime, user.account.id, body)


@router.delete("/me/tokens/{token_id}", response_model=Deleted, summary="Revoke (role: any)")
def revoke_my_token(token_id: int, user: Anyone, runtime: RuntimeDep) -> Deleted:
    runtime.accounts.delete_token(token_id=token_id, account_id=user.account.id)
    return Deleted(deleted=f"token {token_id}")


def issue_token(runtime: RuntimeDep, account_id: int, body: TokenCreate) -> TokenCreated:
    token, digest = new_token()
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(days=body.expires_days) if body.expires_days else None
    token_id = runtime.accounts.add_token(
        account_id=account_id, name=body.name, token_sha256=digest, expires_at=expires
    )
    return TokenCreated(
        id=token_id, name=body.name, created_at=now, expires_at=expires, token=token
    )


@router.get("/accounts", response_model=list[AccountPublic], summary="Accounts (role: admin)")
def list_accounts(user: MayAdminister, runtime: RuntimeDep) -> list[AccountPublic]:
    return [_public(a) for a in runtime.accounts.list_accounts()]


@router.post(
    "/accounts", response_model=AccountPublic, status_code=201, summary="New account (role: admin)"
)
def create_account(body: AccountCreate, user: MayAdminister, runtime: RuntimeDep) -> AccountPublic:
    if policy.needs_institution(body.role) and not body.institution:
        raise InvalidInput(f"a {body.role.value} needs an institution")
    account = runtime.accounts.create_account(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        institution=body.institution if policy.needs_institution(body.role) else None,
    )
    return _public(account)


@router.patch(
    "/accounts/{account_id}", response_model=AccountPublic, summary="Change (role: admin)"
)
def update_account(
    account_id: int, body: AccountUpdate, user: MayAdminister, runtime: RuntimeDep
) -> AccountPublic:
    if account_id == user.account.id and (
        body.active is False or (body.role is not None and not policy.may(body.role, Action.ADMIN))
    ):
        raise InvalidInput("an admin cannot lock themselves out; ask another admin")
    account = runtime.accounts.update_account(
        account_id,
        password_hash=hash_password(body.password) if body.password else None,
        active=body.active,
        role=body.role,
        institution=body.institution,
    )
    return _public(account)


@router.post(
    "/accounts/{account_id}/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="API token for an account, e.g. a script's (role: admin)",
)
def create_token_for(
    account_id: int, body: TokenCreate, user: MayAdminister, runtime: RuntimeDep
) -> TokenCreated:
    runtime.accounts.get(account_id)
    return issue_token(runtime, account_id, body)
