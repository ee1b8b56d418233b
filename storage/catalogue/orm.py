"""SQLAlchemy 2 tables of the catalogue. The catalogue is the source of truth; the vector index
is derived from the `Embedding` rows and can always be rebuilt from them."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kernel.enums import ObjectStatus
from kernel.text import search_text

__all__ = [
    "Base",
    "CatalogueObject",
    "Embedding",
    "Institution",
    "ListingCheck",
    "LocalFeatureSet",
    "Photo",
    "SEARCHED_FIELDS",
    "StatusEvent",
    "enum_type",
    "utcnow",
]


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    """The default of every ``created_at``-like column."""
    return dt.datetime.now(dt.UTC)


def enum_type(cls: type[StrEnum], name: str) -> Enum:
    """A database enum of ``cls`` storing the members' values (what the migrations create)."""
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


_status_enum = enum_type(ObjectStatus, "object_status")


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogueObject(Base):
    __tablename__ = "objects"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The institution's own identifier; unique across the service (see README).
    object_id: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    inventory_number: Mapped[str | None] = mapped_column(String(200))
    object_type: Mapped[str | None] = mapped_column(String(500), index=True)
    materials_techniques: Mapped[str | None] = mapped_column(String(500))
    measurements: Mapped[str | None] = mapped_column(String(500))
    inscriptions_markings: Mapped[str | None] = mapped_column(Text)
    distinguishing_features: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(500))
    date_period: Mapped[str | None] = mapped_column(String(500))
    maker: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ObjectStatus] = mapped_column(
        _status_enum, default=ObjectStatus.IN_COLLECTION, index=True
    )
    loss_date: Mapped[dt.date | None] = mapped_column(Date)
    loss_reference: Mapped[str | None] = mapped_column(String(500))
    #: `SEARCHED_FIELDS` folded (`kernel.text.search_text`), kept by `_fold_search_text` on
    #: every write so a text search compares with one column instead of folding every row.
    search_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    institution: Mapped[Institution] = relationship(lazy="joined")
    photos: Mapped[list[Photo]] = relationship(
        back_populates="object", cascade="all, delete-orphan", order_by="Photo.id"
    )
    history: Mapped[list[StatusEvent]] = relationship(
        back_populates="object", cascade="all, delete-orphan", order_by="StatusEvent.id"
    )


#: The fields a text search looks in (migration 0010 folds the same ones).
SEARCHED_FIELDS = ("object_id", "title", "maker", "inscriptions_markings", "description")


@event.listens_for(CatalogueObject, "before_insert")
@event.listens_for(CatalogueObject, "before_update")
def _fold_search_text(_mapper: object, _connection: object, target: CatalogueObject) -> None:
    # A mapper event, not code in each repository: every ORM write path (upserts, edits,
    # imports written by other modules) keeps the folded column in step.
    target.search_text = search_text(getattr(target, f) for f in SEARCHED_FIELDS)


class StatusEvent(Base):
    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_pk: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    status: Mapped[ObjectStatus] = mapped_column(_status_enum)
    date: Mapped[dt.date | None] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    object: Mapped[CatalogueObject] = relationship(back_populates="history")


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_pk: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    #: Content address of the original bytes: the same bytes are stored once.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    blob_key: Mapped[str] = mapped_column(String(300))
    thumbnail_key: Mapped[str] = mapped_column(String(300))
    view: Mapped[str | None] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(20))
    original_name: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    object: Mapped[CatalogueObject] = relationship(back_populates="photos")
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="photo", cascade="all, delete-orphan"
    )
    local_features: Mapped[list[LocalFeatureSet]] = relationship(cascade="all, delete-orphan")


class Embedding(Base):
    """One photo's global descriptor under one model version (float32 bytes)."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("photo_id", "model", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    photo: Mapped[Photo] = relationship(back_populates="embeddings")


class LocalFeatureSet(Base):
    """One photo's keypoints and descriptors for geometric verification, extracted at ingest
    so a query does not recompute them (`models.local_features.LocalFeatures.to_bytes`)."""

    __tablename__ = "local_features"
    __table_args__ = (UniqueConstraint("photo_id", "method"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    #: Extraction method and parameters, e.g. "rootsift/640/1000".
    method: Mapped[str] = mapped_column(String(100))
    #: The bytes, for rows written before migration 0011 and not yet moved to the blob store
    #: (`artmatch db move-features`); None once they live under ``blob_key``.
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: Where the bytes live in the blob store (`storage.features`); None: still in ``data``.
    blob_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ListingCheck(Base):
    """One auction listing checked against the lost objects; re-runs skip checked listings.

    A listing is (source, listing_id, image_sha256): the source is its venue, or the manifest
    that named it; ``image_sha256`` is None for a check whose photo could not be read.
    """

    __tablename__ = "listing_checks"
    __table_args__ = (Index("ix_listing_checks_identity", "source", "listing_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(1000))
    listing_id: Mapped[str] = mapped_column(String(300))
    image: Mapped[str] = mapped_column(String(1000))
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(1000))
    url: Mapped[str | None] = mapped_column(String(2000))
    seller: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[str | None] = mapped_column(String(100))
    listed_on: Mapped[str | None] = mapped_column(String(100))
    is_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    best_object_id: Mapped[str | None] = mapped_column(String(200))
    best_similarity: Mapped[float | None] = mapped_column(Float)
    #: JSON list of the matching objects with scores.
    matches_json: Mapped[str] = mapped_column(Text, default="[]")
    model_version: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
