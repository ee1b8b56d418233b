"""Accounts (admin) and the caller's own identity and API tokens (any role)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import Anyone, MayAdminister, RuntimeDep
from service.operations import accounts as ops
from service.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    DbId,
    Deleted,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    Whoami,
)
from service.security import LoginRefused, too_many_attempts

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.get("/me", response_model=Whoami, summary="Who am I (role: any)")
def me(user: Anyone) -> Whoami:
    return ops.whoami(user)


@router.get("/me/tokens", response_model=list[TokenPublic], summary="My API tokens (role: any)")
def my_tokens(user: Anyone, runtime: RuntimeDep) -> list[TokenPublic]:
    return ops.tokens_of(runtime, user)


@router.post(
    "/me/tokens", response_model=TokenCreated, status_code=201, summary="New API token (role: any)"
)
def create_my_token(body: TokenCreate, user: Anyone, runtime: RuntimeDep) -> TokenCreated:
    return ops.issue_own_token(runtime, user, body)


@router.delete("/me/tokens/{token_id}", response_model=Deleted, summary="Revoke (role: any)")
def revoke_my_token(token_id: DbId, user: Anyone, runtime: RuntimeDep) -> Deleted:
    ops.revoke_own_token(runtime, user, token_id)
    return Deleted(deleted=f"token {token_id}")


@router.post(
    "/me/password",
    response_model=Deleted,
    responses={429: {"description": "Too many wrong current passwords: wait Retry-After"}},
    summary="Change my password; ends all my sessions and API tokens (role: any)",
)
def change_my_password(
    body: PasswordChange, user: Anyone, runtime: RuntimeDep
) -> Deleted | JSONResponse:
    try:
        ops.change_own_password(runtime, user, body)
    except LoginRefused as exc:
        return too_many_attempts(exc)
    return Deleted(deleted="every session and API token of this account")


@router.get("/accounts", response_model=list[AccountPublic], summary="Accounts (role: admin)")
def list_accounts(user: MayAdminister, runtime: RuntimeDep) -> list[AccountPublic]:
    return ops.list_accounts(runtime)


@router.post(
    "/accounts", response_model=AccountPublic, status_code=201, summary="New account (role: admin)"
)
def create_account(body: AccountCreate, user: MayAdminister, runtime: RuntimeDep) -> AccountPublic:
    return ops.create_account(runtime, user, body)


@router.patch(
    "/accounts/{account_id}",
    response_model=AccountPublic,
    summary="Disable or enable, change the role or institution, or reset the password; "
    "disabling or a new password revokes the account's sessions and tokens (role: admin)",
)
def update_account(
    account_id: DbId, body: AccountUpdate, user: MayAdminister, runtime: RuntimeDep
) -> AccountPublic:
    return ops.update_account(runtime, user, account_id, body)


@router.post(
    "/accounts/{account_id}/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="API token for an account, e.g. a script's (role: admin)",
)
def create_token_for(
    account_id: DbId, body: TokenCreate, user: MayAdminister, runtime: RuntimeDep
) -> TokenCreated:
    return ops.issue_token(runtime, user, account_id, body)
