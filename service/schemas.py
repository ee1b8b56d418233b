"""Request and response bodies of the API, layered on the domain records of `kernel.schemas`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from kernel.enums import JobStatus, Role
from kernel.schemas import ObjectCreate, ObjectPublic, SearchHit, SearchResult

__all__ = [
    "AccountCreate",
    "AccountPublic",
    "AccountUpdate",
    "AuditEntryOut",
    "ChainStatusOut",
    "DbId",
    "Deleted",
    "ErrorBody",
    "Health",
    "InstitutionCreate",
    "InstitutionPublic",
    "JobPublic",
    "LoginRequest",
    "ObjectDetail",
    "ObjectIn",
    "Page",
    "PasswordChange",
    "PhotoOut",
    "Readiness",
    "SearchHitOut",
    "SearchLogOut",
    "SearchResponse",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "UploadOutcome",
    "Whoami",
]

T = TypeVar("T")

#: A database id in a URL (photo, search, account, token). The databases hold signed 64-bit
#: integers: a larger number would overflow the driver (a 500), so it is refused as invalid.
DbId = Annotated[int, Path(ge=1, le=2**63 - 1)]

_Username = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")


class ErrorBody(BaseModel):
    error: str
    message: str
    detail: Any | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    ready: bool
    model: str | None = None
    indexed_photos: int | None = None
    message: str | None = None


# -- accounts ------------------------------------------------------------------------------


class AccountBase(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    role: Role
    #: Required for registrars: the institution whose catalogue they manage.
    institution: str | None = Field(default=None, min_length=1, max_length=200)


class AccountCreate(AccountBase):
    username: str = _Username
    password: str = Field(min_length=10, max_length=200)
    #: Create the institution when it does not exist yet (without: 409, so that a misspelt
    #: name never quietly becomes a new institution).
    create_institution: bool = False


class AccountUpdate(BaseModel):
    role: Role | None = None
    institution: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=10, max_length=200)
    active: bool | None = None
    #: The pages' and reports' language (a `kernel.i18n.LOCALES` code); "" follows the browser.
    language: str | None = Field(default=None, max_length=20)
    #: As for `AccountCreate`: create a new ``institution`` rather than answer 409.
    create_institution: bool = False


class AccountPublic(AccountBase):
    id: int
    username: str
    active: bool
    created_at: dt.datetime
    language: str | None = None


class Whoami(AccountPublic):
    pass


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class TokenPublic(BaseModel):
    id: int
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None


class TokenCreated(TokenPublic):
    #: Shown once; only its hash is stored.
    token: str


# -- catalogue -----------------------------------------------------------------------------


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)


class InstitutionPublic(BaseModel):
    name: str
    objects: int
    created_at: dt.datetime


class ObjectIn(ObjectCreate):
    """A new object; a registrar may leave out the institution (theirs is used)."""

    institution: str | None = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    #: Create the institution when it does not exist yet (without: 409, so a misspelt name
    #: is not quietly a new museum).
    create_institution: bool = False


class PhotoOut(BaseModel):
    id: int
    object_id: str
    sha256: str
    view: str | None
    width: int
    height: int
    original_name: str | None
    image_url: str
    thumbnail_url: str
    created_at: dt.datetime


class ObjectOut(ObjectPublic):
    url: str
    thumbnail_url: str | None = None


class StatusEventOut(BaseModel):
    status: str
    date: dt.date | None
    reference: str | None
    note: str | None


class ObjectDetail(ObjectOut):
    photos: list[PhotoOut]
    history: list[StatusEventOut]


class PossibleDuplicateOut(BaseModel):
    """A stored photo of another object that an uploaded photo verifies against."""

    object_id: str
    photo_id: int
    #: Geometrically consistent local-feature matches between the two photos.
    inliers: int


class UploadOutcome(BaseModel):
    filename: str
    #: "added", "duplicate" (the existing photo is returned) or "error".
    outcome: str
    #: The error, or for an added photo the near-duplicate warning (empty when none).
    message: str = ""
    photo: PhotoOut | None = None
    #: Other objects (that the caller may read) an added photo verifies against: they may be
    #: one object catalogued twice. A warning: the photo is stored.
    possible_duplicates: list[PossibleDuplicateOut] = []


# -- search and audit ----------------------------------------------------------------------


class SearchHitOut(SearchHit):
    thumbnail_url: str
    image_url: str
    object_url: str
    #: PNG of the query beside the catalogue photo with the inliers drawn (verified hits).
    evidence_url: str | None = None


class SearchResponse(SearchResult):
    search_id: int
    case_reference: str | None
    #: The case the search was attached to, if any.
    case_id: int | None = None
    hits: list[SearchHitOut]  # type: ignore[assignment]


class SearchLogOut(BaseModel):
    id: int
    username: str
    created_at: dt.datetime
    case_reference: str | None
    query_sha256: str
    filters: dict[str, Any]
    matches: int
    top_object_id: str | None
    top_similarity: float | None


class AuditEntryOut(BaseModel):
    """One entry of the audit chain (`storage.catalogue.audit`)."""

    seq: int
    created_at: dt.datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class ChainStatusOut(BaseModel):
    """The audit chain checked from its first entry (`artmatch audit verify`)."""

    ok: bool
    entries: int
    head: str
    broken_at: int | None
    problem: str | None
    problems: list[str]
    summary: str


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


# -- batch jobs ----------------------------------------------------------------------------


class JobCreate(BaseModel):
    """A manifest already on the server, under one of the allowed roots."""

    manifest_path: str = Field(min_length=1, max_length=2000)
    recheck: bool = False


class JobPublic(BaseModel):
    id: str
    username: str
    status: JobStatus
    manifest: str
    total: int
    done: int
    checked: int
    skipped: int
    hits: int
    errors: list[str]
    message: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    report_csv_url: str | None = None
    report_json_url: str | None = None


class Deleted(BaseModel):
    deleted: str
