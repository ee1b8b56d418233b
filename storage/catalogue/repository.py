"""`Catalogue`: the metadata repository over SQLAlchemy (SQLite by default).

Every write is one transaction: a failed row leaves nothing behind. Callers get plain domain
records (`kernel.schemas`), never live ORM objects, so no session leaks out of this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Insert, create_engine, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kernel.enums import ObjectStatus
from kernel.errors import Conflict, InvalidInput
from kernel.schemas import ObjectCreate, ObjectPublic, StatusChange
from storage.catalogue.index_state import PHOTOS, IndexState
from storage.catalogue.local_features import FeatureRows
from storage.catalogue.orm import (
    CatalogueObject,
    Embedding,
    Institution,
    ListingCheck,
    Photo,
    StatusEvent,
)
from storage.catalogue.records import (
    PhotoRef,
    institution_row,
    object_public,
    object_row,
    photo_ref,
)
from storage.features import FeatureStore
from storage.index.base import fingerprint_ids

__all__ = [
    "OBJECTS",
    "Catalogue",
    "NewPhoto",
    "PhotoRef",
    "check_status_date",
    "create_catalogue",
]

#: The ``index_state`` row counting status changes of objects. The ``photos`` row (bumped by
#: triggers) misses them, yet a cached search filter ("stolen only") must see them
#: (`engine.search.filters`). Made by the first status change rather than by a migration;
#: until then it reads as 0. Institutions of objects never change, and objects gain or lose
#: photos only with their vectors, which the ``photos`` row counts.
OBJECTS = "objects"


@dataclass(frozen=True)
class NewPhoto:
    sha256: str
    blob_key: str
    thumbnail_key: str
    width: int
    height: int
    format: str
    view: str | None = None
    original_name: str | None = None


def check_status_date(date: dt.date | None) -> None:
    """Refuse a status dated in the future (a typo in the year, mostly). One day of slack:
    the server runs on UTC, registrars in Oslo or Belgrade are up to two hours ahead."""
    if date is not None and date > dt.date.today() + dt.timedelta(days=1):
        raise InvalidInput(f"the status date {date.isoformat()} is in the future")


def create_catalogue(
    database_url: str, *, check_schema: bool = True, features: FeatureStore | None = None
) -> Catalogue:
    """Open the catalogue at ``database_url``.

    With ``check_schema`` (the default) the database must be at the newest migration: a new,
    empty SQLite file is migrated on the spot; anything else not at head raises `ConfigError`
    naming `artmatch db upgrade` (`storage.migrate.ensure_schema`). ``check_schema=False`` is
    for the migration commands themselves. ``features``: where local features are kept
    (`FeatureRows.attach_features`).
    """
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets a search read while an import writes; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    if check_schema:
        from storage.migrate import ensure_schema

        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    catalogue = Catalogue(engine)
    catalogue.attach_features(features)
    return catalogue


class Catalogue(FeatureRows):
    def close(self) -> None:
        self.engine.dispose()

    # -- institutions and objects -------------------------------------------------------

    def upsert_object(self, record: ObjectCreate) -> tuple[ObjectPublic, bool]:
        """Create the object, or fill in fields of an existing one; returns (object, created).

        An existing object of another institution is a `Conflict`: two museums must not
        share an identifier by accident.
        """
        with self._session() as session:
            return self._upsert(session, record)

    def _upsert(self, session: Session, record: ObjectCreate) -> tuple[ObjectPublic, bool]:
        obj, created = self._upsert_row(session, record)
        count = session.scalar(select(func.count(Photo.id)).where(Photo.object_pk == obj.id))
        return object_public(obj, count or 0), created

    def _upsert_row(self, session: Session, record: ObjectCreate) -> tuple[CatalogueObject, bool]:
        inst = institution_row(session, record.institution, create=True)
        obj = session.scalar(
            select(CatalogueObject).where(CatalogueObject.object_id == record.object_id)
        )
        created = obj is None
        if obj is None:
            obj = CatalogueObject(object_id=record.object_id, institution=inst)
            obj.status = record.status
            session.add(obj)
        elif obj.institution_id != inst.id:
            raise Conflict(
                f"object {record.object_id!r} already belongs to {obj.institution.name!r}, "
                f"not {record.institution!r}"
            )
        for field, value in record.model_dump(
            exclude={"object_id", "institution", "status"}
        ).items():
            if value is not None:
                setattr(obj, field, value)
        session.flush()
        return obj, created

    def get_object(self, object_id: str) -> ObjectPublic:
        with self._session() as session:
            obj = object_row(session, object_id)
            return object_public(obj, len(obj.photos))

    def count_objects(self) -> int:
        with self._session() as session:
            return session.scalar(select(func.count(CatalogueObject.id))) or 0

    def set_status(self, object_id: str, change: StatusChange) -> ObjectPublic:
        with self._session() as session:
            check_status_date(change.date)
            obj = object_row(session, object_id)
            # A re-recorded status without a reference keeps the police reference already
            # on file: a registrar correcting the date must not erase the case number.
            reference = change.reference or obj.loss_reference
            if change.status in (ObjectStatus.STOLEN, ObjectStatus.MISSING):
                was_lost = obj.status in (ObjectStatus.STOLEN, ObjectStatus.MISSING)
                obj.loss_date = change.date or (
                    obj.loss_date if was_lost and obj.loss_date else dt.date.today()
                )
                obj.loss_reference = reference
            obj.status = change.status
            session.add(
                StatusEvent(
                    object_pk=obj.id,
                    status=change.status,
                    date=change.date,
                    reference=reference,
                    note=change.note,
                )
            )
            session.execute(_bump(session, OBJECTS))
            session.flush()
            return object_public(obj, len(obj.photos))

    def status_history(self, object_id: str) -> list[StatusChange]:
        with self._session() as session:
            obj = object_row(session, object_id)
            return [
                StatusChange(status=e.status, date=e.date, reference=e.reference, note=e.note)
                for e in obj.history
            ]

    # -- photos and vectors --------------------------------------------------------------

    def photo_by_sha(self, sha256: str) -> PhotoRef | None:
        with self._session() as session:
            photo = session.scalar(select(Photo).where(Photo.sha256 == sha256))
            return None if photo is None else photo_ref(photo)

    def add_photo(
        self,
        *,
        record: ObjectCreate,
        photo: NewPhoto,
        model: str,
        model_version: str,
        vector: np.ndarray,
        local_features: tuple[str, bytes] | None = None,
    ) -> PhotoRef:
        """Create or update the object and attach the photo with its vector (and its local
        features, as ``(method, data)``: to the blob store when one is attached), in one
        commit."""
        with self._session() as session:
            # Two statements fewer than `upsert_object` (the object's photo count, and the
            # object selected again): an import runs this once a photo.
            obj, _ = self._upsert_row(session, record)
            if session.scalar(select(Photo.id).where(Photo.sha256 == photo.sha256)) is not None:
                raise Conflict(f"photo {photo.sha256[:12]} is already in the catalogue")
            row = Photo(object_pk=obj.id, **photo.__dict__)
            session.add(row)
            session.flush()
            session.add(_embedding(row.id, model, model_version, vector))
            if local_features is not None:
                method, data = local_features
                self._feature_row(
                    session, photo_id=row.id, sha256=photo.sha256, method=method, data=data
                )
            session.flush()
            return photo_ref(row)

    def photo_refs(self, photo_ids: Iterable[int]) -> dict[int, PhotoRef]:
        ids = list({int(i) for i in photo_ids})
        if not ids:
            return {}
        # One joined query of plain columns: this runs on every search, for up to a few
        # hundred photo ids, and loading ORM objects with their relationships cost ~30 ms.
        query = (
            select(
                Photo.id,
                Photo.view,
                Photo.blob_key,
                Photo.thumbnail_key,
                CatalogueObject.object_id,
                Institution.name,
                CatalogueObject.status,
                CatalogueObject.title,
                CatalogueObject.maker,
                CatalogueObject.loss_date,
                CatalogueObject.loss_reference,
            )
            .join(CatalogueObject, Photo.object_pk == CatalogueObject.id)
            .join(Institution, CatalogueObject.institution_id == Institution.id)
            .where(Photo.id.in_(ids))
        )
        with self._session() as session:
            return {row[0]: PhotoRef(*row) for row in session.execute(query).all()}

    def photos_of(self, object_id: str) -> list[PhotoRef]:
        with self._session() as session:
            return [photo_ref(p) for p in object_row(session, object_id).photos]

    def photos_without_vector(self, model: str, model_version: str) -> list[PhotoRef]:
        with self._session() as session:
            have = select(Embedding.photo_id).where(
                Embedding.model == model, Embedding.model_version == model_version
            )
            rows = session.scalars(select(Photo).where(Photo.id.not_in(have))).all()
            return [photo_ref(p) for p in rows]

    def store_vectors(
        self, *, model: str, model_version: str, photo_ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        with self._session() as session:
            for pid, vec in zip(photo_ids, vectors, strict=True):
                session.add(_embedding(int(pid), model, model_version, vec))

    def vectors(self, model: str, model_version: str) -> tuple[np.ndarray, np.ndarray]:
        """(photo ids int64, vectors float32) of every photo embedded by that model version."""
        with self._session() as session:
            rows = session.execute(
                select(Embedding.photo_id, Embedding.dim, Embedding.vector)
                .where(Embedding.model == model, Embedding.model_version == model_version)
                .order_by(Embedding.photo_id)
            ).all()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        mat = np.stack([np.frombuffer(r[2], dtype=np.float32, count=r[1]) for r in rows])
        return ids, mat

    def photo_vectors(
        self, photo_ids: Iterable[int], model: str, model_version: str
    ) -> dict[int, np.ndarray]:
        ids = list({int(i) for i in photo_ids})
        if not ids:
            return {}
        with self._session() as session:
            rows = session.execute(
                select(Embedding.photo_id, Embedding.dim, Embedding.vector).where(
                    Embedding.photo_id.in_(ids),
                    Embedding.model == model,
                    Embedding.model_version == model_version,
                )
            ).all()
        return {int(r[0]): np.frombuffer(r[2], dtype=np.float32, count=r[1]) for r in rows}

    def vector_fingerprint(self, model: str, model_version: str) -> str:
        """Changes whenever the set of vectors of that model version changes."""
        with self._session() as session:
            ids = session.scalars(
                select(Embedding.photo_id)
                .where(Embedding.model == model, Embedding.model_version == model_version)
                .order_by(Embedding.photo_id)
            ).all()
        return fingerprint_ids(ids)

    def filter_version(self) -> tuple[int, int]:
        """(photos version, objects version): what `photo_ids_where` and `count_objects_where`
        return can only change when this does. One primary-key SELECT."""
        with self._session() as session:
            rows = dict(
                session.execute(
                    select(IndexState.name, IndexState.version).where(
                        IndexState.name.in_([PHOTOS, OBJECTS])
                    )
                ).all()
            )
        return int(rows.get(PHOTOS) or 0), int(rows.get(OBJECTS) or 0)

    def photo_ids_where(
        self,
        *,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
    ) -> np.ndarray:
        with self._session() as session:
            query = select(Photo.id).join(CatalogueObject)
            if statuses:
                query = query.where(CatalogueObject.status.in_(list(statuses)))
            if institutions:
                query = query.join(Institution).where(Institution.name.in_(list(institutions)))
            return np.asarray(session.scalars(query).all(), dtype=np.int64)

    def count_objects_where(
        self,
        *,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
    ) -> int:
        with self._session() as session:
            query = select(func.count(func.distinct(CatalogueObject.id))).join(Photo)
            if statuses:
                query = query.where(CatalogueObject.status.in_(list(statuses)))
            if institutions:
                query = query.join(Institution).where(Institution.name.in_(list(institutions)))
            return session.scalar(query) or 0

    # -- listing checks ------------------------------------------------------------------

    def checked_listing_photos(
        self, listings: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], set[str]]:
        """(source, listing_id) -> the photo hashes checked without error for it."""
        wanted = set(listings)
        by_id = sorted({listing_id for _, listing_id in wanted})
        found: dict[tuple[str, str], set[str]] = {}
        with self._session() as session:
            for start in range(0, len(by_id), 500):
                rows = session.execute(
                    select(ListingCheck.source, ListingCheck.listing_id, ListingCheck.image_sha256)
                    .where(ListingCheck.listing_id.in_(by_id[start : start + 500]))
                    .where(ListingCheck.error.is_(None), ListingCheck.image_sha256.is_not(None))
                ).all()
                for source, listing_id, sha in rows:
                    if sha is not None and (source, listing_id) in wanted:
                        found.setdefault((source, listing_id), set()).add(sha)
        return found

    def record_listing_check(self, check: dict[str, object]) -> None:
        """Store a check, replacing the earlier one of the same listing and photo and any
        earlier failed one of the listing (a check is either of a photo, or an error)."""
        sha = check.get("image_sha256")
        same: ColumnElement[bool] = ListingCheck.error.is_not(None)
        if sha is not None:
            same = or_(same, ListingCheck.image_sha256 == sha)
        with self._session() as session:
            for old in session.scalars(
                select(ListingCheck).where(
                    ListingCheck.source == check["source"],
                    ListingCheck.listing_id == check["listing_id"],
                    same,
                )
            ).all():
                session.delete(old)
            session.flush()
            session.add(ListingCheck(**check))

    def listing_checks(
        self, keys: Iterable[tuple[str, str, str | None]]
    ) -> dict[tuple[str, str, str | None], dict[str, object]]:
        """The newest check stored under each (source, listing_id, sha256) key; a key with
        no sha256 finds the listing's check that failed before its photo was read."""
        wanted = set(keys)
        by_id = sorted({listing_id for _, listing_id, _ in wanted})
        out: dict[tuple[str, str, str | None], dict[str, object]] = {}
        with self._session() as session:
            for start in range(0, len(by_id), 500):
                rows = session.scalars(
                    select(ListingCheck)
                    .where(ListingCheck.listing_id.in_(by_id[start : start + 500]))
                    .order_by(ListingCheck.id)
                ).all()
                for r in rows:
                    # A failed check is stored under its photo's hash when the photo was
                    # read (it would not decode, say), else under None.
                    key = (r.source, r.listing_id, r.image_sha256)
                    if key in wanted:
                        out[key] = {
                            c.name: getattr(r, c.key)
                            for c in ListingCheck.__table__.columns
                            if c.name != "id"
                        } | {"matches": json.loads(r.matches_json)}
        return out


def _bump(session: Session, name: str) -> Insert:
    """Count one more change under ``name`` in ``index_state``, making the row if missing
    (an upsert: two first changes at once each count)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(IndexState)
        .values(name=name, version=1)
        .on_conflict_do_update(
            index_elements=[IndexState.name],
            set_={"version": IndexState.version + 1, "updated_at": func.now()},
        )
    )


def _embedding(photo_id: int, model: str, model_version: str, vector: np.ndarray) -> Embedding:
    vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(vec)):
        raise InvalidInput("embedding has non-finite values")
    return Embedding(
        photo_id=photo_id,
        model=model,
        model_version=model_version,
        dim=vec.size,
        vector=vec.tobytes(),
    )
