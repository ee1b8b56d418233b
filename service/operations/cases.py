"""Cases (investigations): open one, share it, attach searches and batch checks, and record a
review decision on each hit.

A case is seen by its author, the accounts it is shared with, admins and auditors
(`service.policy.case_access`); to anyone else it does not exist (ids are sequential). A
read-only share or an auditor may look but not change; only the author and admins share.
The bodies of the case API are defined here, beside the only code that builds them.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.evidence import photo_evidence_png, query_blob_key
from engine.services import Services
from kernel.errors import InvalidInput, NotFound
from kernel.i18n import N_, Translator
from kernel.i18n import translator as translator_of
from models.images import decode_image, make_thumbnail
from service import policy
from service.deps import Principal
from service.errors import Forbidden
from service.operations.links import API, object_url
from service.operations.reports import ReportFormat, report_of_searches
from service.runtime import Runtime
from service.schemas import Page
from storage.catalogue.alerts import AlertStore
from storage.catalogue.cases import (
    CaseAccess,
    CaseRecord,
    Cases,
    DecisionRecord,
    ReviewDecision,
    latest_decisions,
)
from storage.catalogue.search_log import SearchLogRecord

__all__ = [
    "CaseCreate",
    "CaseDetail",
    "CaseHitOut",
    "CaseJobOut",
    "CaseSearchOut",
    "CaseSummary",
    "CaseUpdate",
    "DecisionIn",
    "DecisionOut",
    "SearchAttach",
    "ShareIn",
    "ShareOut",
    "attach_search",
    "case_evidence",
    "case_query_photo",
    "cases_of",
    "create_case",
    "decide",
    "decision_history",
    "get_case",
    "list_cases",
    "share_case",
    "unshare_case",
    "update_case",
    "writable_case",
    "writable_cases",
]

# -- bodies ----------------------------------------------------------------------------------


class CaseCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    reference: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    notes: str = Field(default="", max_length=100_000)


class CaseUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    reference: str | None = Field(default=None, min_length=1, max_length=200)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=100_000)


class ShareIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    access: CaseAccess = CaseAccess.READ


class ShareOut(BaseModel):
    username: str
    access: CaseAccess
    shared_by: str
    created_at: dt.datetime


class SearchAttach(BaseModel):
    search_id: int = Field(ge=1, le=2**63 - 1)


class DecisionIn(BaseModel):
    search_id: int = Field(ge=1, le=2**63 - 1)
    object_id: str = Field(min_length=1, max_length=200)
    photo_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    decision: ReviewDecision
    note: str | None = Field(default=None, max_length=5000)


class DecisionOut(BaseModel):
    id: int
    search_id: int
    object_id: str
    photo_id: int | None
    decision: ReviewDecision
    note: str | None
    username: str
    created_at: dt.datetime


class CaseHitOut(BaseModel):
    """A hit of a case's search and the decision that stands on it (pending review until
    someone decides)."""

    object_id: str
    photo_id: int | None
    #: What the search said of it (match, lead or none), its confidence and matching points;
    #: None for a search logged without its hits (from before they were kept).
    search_decision: str | None = None
    confidence: float | None = None
    inliers: int | None = None
    decision: ReviewDecision
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str | None
    object_url: str
    evidence_url: str | None


class CaseSearchOut(BaseModel):
    search_id: int
    username: str
    created_at: dt.datetime
    attached_by: str
    case_reference: str | None
    query_sha256: str
    filters: dict[str, object]
    matches: int
    top_object_id: str | None
    top_similarity: float | None
    query_url: str
    hits: list[CaseHitOut]


class CaseJobOut(BaseModel):
    id: str
    username: str
    status: str
    total: int
    done: int
    hits: int
    attached_by: str
    attached_at: dt.datetime
    report_csv_url: str | None
    report_json_url: str | None


class CaseSummary(BaseModel):
    id: int
    reference: str
    title: str
    owner: str
    created_at: dt.datetime
    updated_at: dt.datetime
    #: What the caller may do: "read" or "write".
    access: str
    url: str


class CaseDetail(CaseSummary):
    notes: str
    #: Whether the caller may share the case (its author, admins).
    may_share: bool
    shares: list[ShareOut]
    searches: list[CaseSearchOut]
    jobs: list[CaseJobOut]


# -- access ----------------------------------------------------------------------------------


def _repo(rt: Runtime) -> Cases:
    # Made on first use and kept on the runtime, as `Services.index_states` is.
    repo = rt.__dict__.get("_cases")
    if repo is None or repo.engine is not rt.catalogue.engine:
        repo = rt.__dict__["_cases"] = Cases(rt.catalogue.engine)
    return repo  # type: ignore[no-any-return]


def cases_of(rt: Runtime) -> Cases:
    """The case repository of ``rt`` (for searches and jobs that attach to a case)."""
    return _repo(rt)


def _access(rt: Runtime, principal: Principal, case: CaseRecord) -> str | None:
    return policy.case_access(
        principal.role,
        account_id=principal.account.id,
        owner_id=case.owner_id,
        shared=_repo(rt).share_of(case.id, principal.account.id),
    )


def _case(
    rt: Runtime, principal: Principal, case_id: int, *, write: bool
) -> tuple[CaseRecord, str]:
    """The case and the caller's access; NotFound where they may not see it, Forbidden where
    they may see but ``write`` is needed."""
    try:
        case = _repo(rt).get_case(case_id)
    except NotFound:
        case = None
    access = _access(rt, principal, case) if case is not None else None
    if case is None or access is None:
        # The same answer as for a case that does not exist: ids are sequential.
        raise NotFound(f"no case {case_id}")
    if write and access != "write":
        raise Forbidden(f"case {case_id} is yours to read, not to change")
    return case, access


def readable_case(rt: Runtime, principal: Principal, case_id: int) -> CaseRecord:
    """The case, if the caller may read it (else NotFound, as for a case that does not exist)."""
    return _case(rt, principal, case_id, write=False)[0]


def writable_case(rt: Runtime, principal: Principal, case_id: int) -> CaseRecord:
    """The case, if the caller may attach work to it (else NotFound or Forbidden)."""
    return _case(rt, principal, case_id, write=True)[0]


def _summary(case: CaseRecord, access: str) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        reference=case.reference,
        title=case.title,
        owner=case.owner_username,
        created_at=case.created_at,
        updated_at=case.updated_at,
        access=access,
        url=f"{API}/cases/{case.id}",
    )


# -- cases -----------------------------------------------------------------------------------


def list_cases(
    rt: Runtime, principal: Principal, *, page: int, page_size: int
) -> Page[CaseSummary]:
    """The caller's own and shared cases (every case for the roles that read them all)."""
    everyone = principal.may(policy.Action.READ_ALL_CASES)
    rows, total = _repo(rt).list_cases(
        offset=(page - 1) * page_size,
        limit=page_size,
        account_id=None if everyone else principal.account.id,
    )
    items = [_summary(c, _access(rt, principal, c) or "read") for c in rows]
    return Page[CaseSummary](items=items, total=total, page=page, page_size=page_size)


def writable_cases(rt: Runtime, principal: Principal) -> list[CaseSummary]:
    """The cases the caller may attach a search or batch check to (for the forms)."""
    if not principal.may(policy.Action.CASES):
        return []
    rows, _ = _repo(rt).list_cases(offset=0, limit=200, account_id=principal.account.id)
    summaries = [_summary(c, _access(rt, principal, c) or "read") for c in rows]
    return [s for s in summaries if s.access == "write"]


def create_case(rt: Runtime, principal: Principal, body: CaseCreate) -> CaseDetail:
    case = _repo(rt).open_case(
        owner=principal.account, reference=body.reference, title=body.title, notes=body.notes
    )
    return get_case(rt, principal, case.id)


def update_case(rt: Runtime, principal: Principal, case_id: int, body: CaseUpdate) -> CaseDetail:
    _case(rt, principal, case_id, write=True)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput(N_("nothing to change: send reference, title or notes"))
    _repo(rt).update_case(case_id, actor=principal.account.username, changes=changes)
    return get_case(rt, principal, case_id)


def get_case(rt: Runtime, principal: Principal, case_id: int) -> CaseDetail:
    case, access = _case(rt, principal, case_id, write=False)
    repo = _repo(rt)
    history = repo.decisions(case_id)
    latest = latest_decisions(history)
    searches = [
        _case_search(rt, case_id, int(a.key), a.attached_by, latest)
        for a in repo.searches_of(case_id)
    ]
    return CaseDetail(
        **_summary(case, access).model_dump(),
        notes=case.notes,
        may_share=policy.may_share_case(
            principal.role, account_id=principal.account.id, owner_id=case.owner_id
        ),
        shares=[ShareOut(**s.__dict__) for s in repo.shares(case_id)],
        searches=searches,
        jobs=[
            _case_job(rt, str(a.key), a.attached_by, a.attached_at) for a in repo.jobs_of(case_id)
        ],
    )


def _case_search(
    rt: Runtime,
    case_id: int,
    search_id: int,
    attached_by: str,
    latest: dict[tuple[int, str], DecisionRecord],
) -> CaseSearchOut:
    logged = rt.search_log.get_search(search_id)
    record = rt.search_log.search_record(search_id)
    # The search's matches and leads as it kept them; a search logged without its hits
    # shows its top hit. Objects someone decided on are shown too.
    stored = {
        h.object_id: h for h in (record.hits if record else []) if h.decision in ("match", "lead")
    }
    objects = list(stored) or ([logged.top_object_id] if logged.top_object_id else [])
    objects += sorted(o for s, o in latest if s == search_id and o not in objects)
    hits = []
    for object_id in objects:
        d = latest.get((search_id, object_id))
        h = stored.get(object_id)
        photo_id = d.photo_id if d and d.photo_id else (h.photo_id if h else None)
        hits.append(
            CaseHitOut(
                object_id=object_id,
                photo_id=photo_id,
                search_decision=h.decision if h else None,
                confidence=h.confidence if h else None,
                inliers=h.inliers if h else None,
                decision=d.decision if d else ReviewDecision.PENDING_REVIEW,
                decided_by=d.username if d else None,
                decided_at=d.created_at if d else None,
                note=d.note if d else None,
                object_url=object_url(object_id),
                evidence_url=(
                    f"{API}/cases/{case_id}/searches/{search_id}/evidence/{photo_id}.png"
                    if photo_id
                    else None
                ),
            )
        )
    return CaseSearchOut(
        search_id=search_id,
        username=logged.username,
        created_at=logged.created_at,
        attached_by=attached_by,
        case_reference=logged.case_reference,
        query_sha256=logged.query_sha256,
        filters=logged.filters,
        matches=logged.matches,
        top_object_id=logged.top_object_id,
        top_similarity=logged.top_similarity,
        query_url=f"{API}/cases/{case_id}/searches/{search_id}/query.jpg",
        hits=hits,
    )


def _case_job(rt: Runtime, job_id: str, attached_by: str, attached_at: dt.datetime) -> CaseJobOut:
    job = rt.jobs.get_job(job_id)
    return CaseJobOut(
        id=job.id,
        username=job.username,
        status=job.status.value,
        total=job.total,
        done=job.done,
        hits=job.hits,
        attached_by=attached_by,
        attached_at=attached_at,
        # Reports stay their author's (and admins'): a case member sees the counts.
        report_csv_url=None,
        report_json_url=None,
    )


# -- shares ----------------------------------------------------------------------------------


def _may_share(principal: Principal, case: CaseRecord) -> None:
    if not policy.may_share_case(
        principal.role, account_id=principal.account.id, owner_id=case.owner_id
    ):
        raise Forbidden(f"only the author of case {case.id} or an admin may share it")


def share_case(rt: Runtime, principal: Principal, case_id: int, body: ShareIn) -> list[ShareOut]:
    case, _ = _case(rt, principal, case_id, write=False)
    _may_share(principal, case)
    account = rt.accounts.by_username(body.username)
    if account is None or not account.active:
        raise InvalidInput(f"no active account {body.username!r}")
    if account.id == case.owner_id:
        raise InvalidInput(f"{account.username} opened case {case_id}: it is theirs already")
    if not policy.may(account.role, policy.Action.SHARE_CASES):
        roles = ", ".join(r.value for r in policy.allowed_roles(policy.Action.SHARE_CASES))
        raise InvalidInput(
            f"{account.username} is {account.role.value}: cases are shared with {roles}"
        )
    _repo(rt).share(case_id, account=account, access=body.access, actor=principal.account.username)
    return [ShareOut(**s.__dict__) for s in _repo(rt).shares(case_id)]


def unshare_case(rt: Runtime, principal: Principal, case_id: int, username: str) -> list[ShareOut]:
    case, _ = _case(rt, principal, case_id, write=False)
    _may_share(principal, case)
    account = rt.accounts.by_username(username)
    if account is None:
        raise NotFound(f"case {case_id} is not shared with {username}")
    _repo(rt).unshare(case_id, account=account, actor=principal.account.username)
    return [ShareOut(**s.__dict__) for s in _repo(rt).shares(case_id)]


# -- searches, jobs, decisions ---------------------------------------------------------------


def attach_search(rt: Runtime, principal: Principal, case_id: int, search_id: int) -> CaseDetail:
    """Attach a search the caller may read (their own; any for admins) to the case."""
    writable_case(rt, principal, case_id)
    try:
        logged = rt.search_log.get_search(search_id)
    except NotFound:
        logged = None
    if logged is None or not policy.may_read_search(
        principal.role, account_id=principal.account.id, author_id=logged.account_id
    ):
        raise NotFound(f"no search {search_id}")
    _repo(rt).attach_search(case_id, search_id=search_id, actor=principal.account.username)
    watch_matches(rt, case_id, search_id)
    return get_case(rt, principal, case_id)


def watch_matches(rt: Runtime, case_id: int, search_id: int) -> None:
    """Let the case follow the objects its search matched: an alert on one of them (a
    listing found when it is reported stolen) reaches those who follow the case."""
    record = rt.search_log.search_record(search_id)
    store = AlertStore(rt.catalogue.engine)
    for hit in record.hits if record else []:
        if hit.decision == "match":
            store.watch(case_id=case_id, object_id=hit.object_id)


def decide(rt: Runtime, principal: Principal, case_id: int, body: DecisionIn) -> DecisionOut:
    writable_case(rt, principal, case_id)
    try:
        rt.catalogue.get_object(body.object_id)
    except NotFound:
        raise InvalidInput(f"no catalogue object {body.object_id!r}") from None
    if body.decision is ReviewDecision.CONFIRMED:
        # A confirmed object is the case's to follow, whatever the search first said of it.
        AlertStore(rt.catalogue.engine).watch(case_id=case_id, object_id=body.object_id)
    record = _repo(rt).decide(
        case_id,
        search_id=body.search_id,
        object_id=body.object_id,
        photo_id=body.photo_id,
        decision=body.decision,
        note=body.note or None,
        account=principal.account,
    )
    return _decision_out(record)


def _decision_out(d: DecisionRecord) -> DecisionOut:
    return DecisionOut.model_validate(d, from_attributes=True)


def decision_history(
    rt: Runtime, principal: Principal, case_id: int, *, search_id: int | None = None
) -> list[DecisionOut]:
    """Every decision on the case's hits, newest first."""
    _case(rt, principal, case_id, write=False)
    return [_decision_out(d) for d in _repo(rt).decisions(case_id, search_id=search_id)]


# -- the case's report -----------------------------------------------------------------------


async def case_report(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    case_id: int,
    fmt: ReportFormat,
    language: str | None = None,
) -> bytes:
    """The signed report of every search of the case, oldest first: for everyone who may read
    the case (its searches may be others'); logged like every report."""
    case, _ = _case(rt, principal, case_id, write=False)
    search_ids = sorted(int(a.key) for a in _repo(rt).searches_of(case_id))
    if not search_ids:
        raise InvalidInput(f"case {case.reference} has no search to report on yet")
    return await report_of_searches(
        rt,
        services,
        principal,
        search_ids=search_ids,
        fmt=fmt,
        title=f"Case {case.reference}: {case.title}",
        case_id=case_id,
        language=language,
    )


# -- pictures --------------------------------------------------------------------------------


def _attached_search(
    rt: Runtime, principal: Principal, case_id: int, search_id: int
) -> SearchLogRecord:
    _case(rt, principal, case_id, write=False)
    if _repo(rt).case_of_search(search_id) != case_id:
        raise NotFound(f"case {case_id} has no search {search_id}")
    return rt.search_log.get_search(search_id)


async def case_query_photo(
    rt: Runtime, services: Services, principal: Principal, *, case_id: int, search_id: int
) -> bytes:
    """A JPEG thumbnail of the photo a case's search was made with."""

    def work() -> bytes:
        logged = _attached_search(rt, principal, case_id, search_id)
        key = query_blob_key(logged.query_sha256)
        if not services.blobs.exists(key):
            raise NotFound(f"the photo of search {search_id} is no longer kept")
        image = decode_image(
            services.blobs.get(key),
            source=f"search {search_id}",
            max_pixels=rt.settings.max_image_pixels,
        )
        return make_thumbnail(image.image, max_side=320)

    return await run_in_threadpool(work)


async def case_evidence(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    case_id: int,
    search_id: int,
    photo_id: int,
    translator: Translator | None = None,
) -> bytes:
    """The evidence picture of a hit of a case's search, for everyone who may read the case
    (not only the search's author); logged like every evidence fetch."""

    def work() -> bytes:
        logged = _attached_search(rt, principal, case_id, search_id)
        data = services.blobs.get(query_blob_key(logged.query_sha256))
        query = decode_image(
            data, source=f"search {search_id}", max_pixels=rt.settings.max_image_pixels
        )
        case = _repo(rt).get_case(case_id)
        t = translator or translator_of(None)
        caption = (
            t.gettext("search %(search)s", search=search_id)
            + ", "
            + t.gettext("case %(case)s", case=case.reference)
        )
        png = photo_evidence_png(services, query, photo_id, caption=caption, translate=t.gettext)
        rt.audit.append(
            actor=principal.account.username,
            action="evidence",
            subject=f"search {search_id}",
            details={"photo_id": photo_id, "author": logged.username, "case_id": case_id},
        )
        return png

    return await run_in_threadpool(work)
