"""Plain records of catalogue rows, and the row mappers and lookups the repositories share.

Repositories (`Catalogue`, `CatalogueQueries`, `Accounts`, `SearchLog`, `Jobs`) hand callers
these records, never live ORM objects, so no session leaks out of `storage.catalogue`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.enums import ObjectStatus
from kernel.errors import NotFound
from kernel.schemas import ObjectPublic
from storage.catalogue.orm import CatalogueObject, Institution, Photo, utcnow

__all__ = [
    "PhotoRecord",
    "PhotoRef",
    "aware",
    "created",
    "institution_row",
    "object_public",
    "object_row",
    "photo_record",
    "photo_ref",
]


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: dt.datetime | None) -> dt.datetime | None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` with its time zone: UTC where the database dropped it."""
    # SQLite hands back naive datetimes even for timezone=True columns; they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def created(value: dt.datetime | None) -> dt.datetime:
    """A creation time as stored, or now for a row not flushed yet."""
    return aware(value) or utcnow()


# -- lookups ------------------------------------------------------------------------------


def institution_row(session: Session, name: str, *, create: bool) -> Institution:
    """The institution called ``name``; made if missing with ``create``, else `NotFound`."""
    inst = session.scalar(select(Institution).where(Institution.name == name))
    if inst is None:
        if not create:
            raise NotFound(f"no institution {name!r}")
        inst = Institution(name=name)
        session.add(inst)
        session.flush()
    return inst


def object_row(session: Session, object_id: str) -> CatalogueObject:
    """The object with the institution's identifier ``object_id``, or `NotFound`."""
    obj = session.scalar(select(CatalogueObject).where(CatalogueObject.object_id == object_id))
    if obj is None:
        raise NotFound(f"no object {object_id!r} in the catalogue")
    return obj


# -- objects ------------------------------------------------------------------------------


def object_public(obj: CatalogueObject, photo_count: int) -> ObjectPublic:
    data = {f: getattr(obj, f) for f in ObjectPublic.model_fields if hasattr(obj, f)}
    return ObjectPublic.model_validate(
        data | {"institution": obj.institution.name, "photo_count": photo_count}
    )


# -- photos -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoRef:
    """What a search hit needs to know about a catalogue photo and its object."""

    photo_id: int
    view: str | None
    blob_key: str
    thumbnail_key: str
    object_id: str
    institution: str
    status: ObjectStatus
    title: str | None
    maker: str | None
    loss_date: dt.date | None
    loss_reference: str | None


def photo_ref(photo: Photo) -> PhotoRef:
    obj = photo.object
    return PhotoRef(
        photo_id=photo.id,
        view=photo.view,
        blob_key=photo.blob_key,
        thumbnail_key=photo.thumbnail_key,
        object_id=obj.object_id,
        institution=obj.institution.name,
        status=obj.status,
        title=obj.title,
        maker=obj.maker,
        loss_date=obj.loss_date,
        loss_reference=obj.loss_reference,
    )


@dataclass(frozen=True)
class PhotoRecord:
    """A photo row as the web service shows and deletes it."""

    id: int
    sha256: str
    view: str | None
    width: int
    height: int
    format: str
    blob_key: str
    thumbnail_key: str
    original_name: str | None
    object_id: str
    institution: str
    created_at: dt.datetime


def photo_record(row: Photo) -> PhotoRecord:
    return PhotoRecord(
        id=row.id,
        sha256=row.sha256,
        view=row.view,
        width=row.width,
        height=row.height,
        format=row.format,
        blob_key=row.blob_key,
        thumbnail_key=row.thumbnail_key,
        original_name=row.original_name,
        object_id=row.object.object_id,
        institution=row.object.institution.name,
        created_at=created(row.created_at),
    )
