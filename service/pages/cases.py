"""The case pages: the list of one's cases (and a form to open one), and a case with its
notes, shares, searches (a confirm / reject button on each hit) and batch checks.

The forms post here and are answered with a redirect back to the page (post/redirect/get),
or with the page again and the error when the operation refuses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from kernel.errors import ArtmatchError
from service.deps import Principal, RuntimeDep, require
from service.errors import status_of
from service.operations import cases as ops
from service.operations.cases import CaseCreate, CaseUpdate, DecisionIn, ShareIn
from service.pages.rendering import render
from service.policy import Action
from service.schemas import DbId

router = APIRouter(include_in_schema=False)

MayUseCases = Annotated[Principal, Depends(require(Action.CASES))]
MayOpenCase = Annotated[Principal, Depends(require(Action.OPEN_CASE))]

_PAGE = 100


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def _status(exc: Exception) -> int:
    return status_of(exc) if isinstance(exc, ArtmatchError) else 422


def _list_page(
    request: Request,
    user: Principal,
    runtime: RuntimeDep,
    *,
    status_code: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    cases = ops.list_cases(runtime, user, page=1, page_size=_PAGE)
    return render(
        request,
        "cases.html",
        user,
        status_code=status_code,
        cases=cases.items,
        total=cases.total,
        error=error,
        form=form or {},
    )


def _case_page(
    request: Request,
    user: Principal,
    runtime: RuntimeDep,
    case_id: int,
    *,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    case = ops.get_case(runtime, user, case_id)
    return render(request, "case.html", user, case=case, error=error, status_code=status_code)


def _back(case_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}{anchor}", status_code=303)


@router.get("/cases", response_class=HTMLResponse, summary="Cases")
def cases_page(request: Request, user: MayUseCases, runtime: RuntimeDep) -> HTMLResponse:
    return _list_page(request, user, runtime)


@router.post("/cases", response_class=HTMLResponse, summary="Open a case (role: investigator)")
def open_case(
    request: Request,
    user: MayOpenCase,
    runtime: RuntimeDep,
    reference: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=500)] = "",
    notes: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    try:
        body = CaseCreate(reference=reference, title=title, notes=notes)
        case = ops.create_case(runtime, user, body)
    except (ArtmatchError, ValidationError) as exc:
        form = {"reference": reference, "title": title, "notes": notes}
        return _list_page(
            request, user, runtime, status_code=_status(exc), error=_message(exc), form=form
        )
    return _back(case.id)


@router.get("/cases/{case_id}", response_class=HTMLResponse, summary="A case")
def case_page(
    request: Request, case_id: DbId, user: MayUseCases, runtime: RuntimeDep
) -> HTMLResponse:
    return _case_page(request, user, runtime, case_id)


@router.post("/cases/{case_id}", response_class=HTMLResponse, summary="Change a case's notes")
def edit_case(
    request: Request,
    case_id: DbId,
    user: MayUseCases,
    runtime: RuntimeDep,
    title: Annotated[str | None, Form(max_length=500)] = None,
    notes: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    try:
        ops.update_case(runtime, user, case_id, CaseUpdate(title=title or None, notes=notes))
    except (ArtmatchError, ValidationError) as exc:
        return _case_page(
            request, user, runtime, case_id, status_code=_status(exc), error=_message(exc)
        )
    return _back(case_id, "#notes")


@router.post("/cases/{case_id}/shares", response_class=HTMLResponse, summary="Share a case")
def share_case(
    request: Request,
    case_id: DbId,
    user: MayUseCases,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=100)] = "",
    access: Annotated[str, Form(max_length=20)] = "read",
    remove: Annotated[bool, Form()] = False,
) -> Response:
    try:
        if remove:
            ops.unshare_case(runtime, user, case_id, username)
        else:
            body = ShareIn.model_validate({"username": username, "access": access})
            ops.share_case(runtime, user, case_id, body)
    except (ArtmatchError, ValidationError) as exc:
        return _case_page(
            request, user, runtime, case_id, status_code=_status(exc), error=_message(exc)
        )
    return _back(case_id, "#shares")


@router.post("/cases/{case_id}/decisions", response_class=HTMLResponse, summary="Decide on a hit")
def decide(
    request: Request,
    case_id: DbId,
    user: MayUseCases,
    runtime: RuntimeDep,
    search_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    object_id: Annotated[str, Form(max_length=200)],
    decision: Annotated[str, Form(max_length=20)],
    photo_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    note: Annotated[str | None, Form(max_length=5000)] = None,
) -> Response:
    try:
        body = DecisionIn.model_validate(
            {
                "search_id": search_id,
                "object_id": object_id,
                "photo_id": photo_id,
                "decision": decision,
                "note": note or None,
            }
        )
        ops.decide(runtime, user, case_id, body)
    except (ArtmatchError, ValidationError) as exc:
        return _case_page(
            request, user, runtime, case_id, status_code=_status(exc), error=_message(exc)
        )
    return _back(case_id, f"#search-{search_id}")
