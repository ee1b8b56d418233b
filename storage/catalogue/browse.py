"""Browsing and editing the catalogue from the web service: paged and filtered object
lists, edits, deletes, photos by id, institutions. Callers get plain records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from kernel.enums import ObjectStatus
from kernel.errors import Conflict, NotFound
from kernel.schemas import ObjectPublic
from kernel.text import fold_variants
from storage.catalogue.accounts import Account
from storage.catalogue.orm import CatalogueObject, Institution, Photo
from storage.catalogue.records import (
    PhotoRecord,
    created,
    institution_row,
    object_public,
    object_row,
    photo_record,
)
from storage.catalogue.sessions import Repository

__all__ = ["CatalogueQueries", "InstitutionRecord", "PhotoRecord"]


@dataclass(frozen=True)
class InstitutionRecord:
    name: str
    objects: int
    created_at: dt.datetime


class CatalogueQueries(Repository):
    """Browsing and editing the catalogue from the web service."""

    def institutions(self) -> list[InstitutionRecord]:
        with self._session() as session:
            rows = session.execute(
                select(Institution, func.count(CatalogueObject.id))
                .outerjoin(CatalogueObject, CatalogueObject.institution_id == Institution.id)
                .group_by(Institution.id)
                .order_by(Institution.name)
            ).all()
            return [InstitutionRecord(i.name, n, created(i.created_at)) for i, n in rows]

    def create_institution(self, name: str) -> InstitutionRecord:
        with self._session() as session:
            if session.scalar(select(Institution.id).where(Institution.name == name)):
                raise Conflict(f"institution {name!r} already exists")
            inst = institution_row(session, name, create=True)
            return InstitutionRecord(inst.name, 0, created(inst.created_at))

    def delete_institution(self, name: str) -> None:
        with self._session() as session:
            inst = institution_row(session, name, create=False)
            used = session.scalar(
                select(func.count(CatalogueObject.id)).where(
                    CatalogueObject.institution_id == inst.id
                )
            ) or session.scalar(
                select(func.count(Account.id)).where(Account.institution_id == inst.id)
            )
            if used:
                raise Conflict(f"institution {name!r} still has objects or accounts")
            session.delete(inst)

    def list_objects(
        self,
        *,
        offset: int,
        limit: int,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
        object_type: str | None = None,
        text: str | None = None,
    ) -> tuple[list[ObjectPublic], int]:
        where: list[Any] = []
        if statuses:
            where.append(CatalogueObject.status.in_(list(statuses)))
        if institutions:
            where.append(Institution.name.in_(list(institutions)))
        if object_type:
            where.append(func.lower(CatalogueObject.object_type) == object_type.lower())
        if text and "\0" in text:
            # No field holds a NUL (PostgreSQL cannot store one), and SQLite's LIKE would end
            # the pattern there: "%\0%" became "%", which matched every object.
            return [], 0
        variants = fold_variants(text) if text else []
        if text and text.strip() and not variants:
            # Nothing searchable is left once folded (zero-width marks alone): no field holds it.
            return [], 0
        if variants:
            # Both sides folded (`kernel.text`): script, case and diacritics do not matter, and
            # the stored side was folded on write. A Cyrillic query has several Latin spellings.
            where.append(
                or_(
                    *(CatalogueObject.search_text.like(_contains(v), escape="\\") for v in variants)
                )
            )
        photo_count = (
            select(func.count(Photo.id))
            .where(Photo.object_pk == CatalogueObject.id)
            .correlate(CatalogueObject)
            .scalar_subquery()
        )
        with self._session() as session:
            base = select(CatalogueObject).join(Institution).where(*where)
            total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
            rows = session.execute(
                base.add_columns(photo_count)
                .order_by(CatalogueObject.updated_at.desc(), CatalogueObject.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [object_public(obj, n) for obj, n in rows], total

    def first_photos(self, object_ids: Sequence[str]) -> dict[str, int]:
        """The first photo of each object, for thumbnails in lists."""
        if not object_ids:
            return {}
        with self._session() as session:
            rows = session.execute(
                select(CatalogueObject.object_id, func.min(Photo.id))
                .join(Photo, Photo.object_pk == CatalogueObject.id)
                .where(CatalogueObject.object_id.in_(list(object_ids)))
                .group_by(CatalogueObject.object_id)
            ).all()
            return {oid: pid for oid, pid in rows}

    def object_types(self) -> list[str]:
        with self._session() as session:
            return [
                t
                for t in session.scalars(
                    select(CatalogueObject.object_type)
                    .distinct()
                    .order_by(CatalogueObject.object_type)
                ).all()
                if t
            ]

    def update_object(self, object_id: str, fields: dict[str, Any]) -> ObjectPublic:
        """Set (or clear, with None) the given descriptive fields."""
        with self._session() as session:
            obj = object_row(session, object_id)
            for key, value in fields.items():
                setattr(obj, key, value)
            session.flush()
            return object_public(obj, len(obj.photos))

    def object_institution(self, object_id: str) -> str:
        with self._session() as session:
            return object_row(session, object_id).institution.name

    def delete_object(self, object_id: str) -> list[PhotoRecord]:
        """Delete the object with its photos, vectors and history; returns the photos."""
        with self._session() as session:
            obj = object_row(session, object_id)
            photos = [photo_record(p) for p in obj.photos]
            session.delete(obj)
            return photos

    def photo(self, photo_id: int) -> PhotoRecord:
        with self._session() as session:
            row = session.get(Photo, photo_id)
            if row is None:
                raise NotFound(f"no photo {photo_id}")
            return photo_record(row)

    def photos_of(self, object_id: str) -> list[PhotoRecord]:
        with self._session() as session:
            return [photo_record(p) for p in object_row(session, object_id).photos]

    def delete_photo(self, photo_id: int) -> PhotoRecord:
        with self._session() as session:
            row = session.get(Photo, photo_id)
            if row is None:
                raise NotFound(f"no photo {photo_id}")
            record = photo_record(row)
            session.delete(row)
            return record


def _contains(folded: str) -> str:
    """A LIKE pattern finding ``folded`` anywhere, its wildcards taken literally."""
    return "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
