"""Watchlists, alerts, sightings and the stored features of checked listing photos (tables
``listing_features``, ``sightings``, ``alert_subscriptions``, ``alert_webhooks``, ``alerts``,
``case_watches`` and ``rechecks``; the migrations own them).

- **Listing features:** the local features and CNN vector of every listing photo checked,
  keyed by the photo's SHA-256, so a retroactive re-check (`ingest.recheck`) never decodes a
  listing photo again.
- **Sightings:** a catalogue object seen in a listing (venue, date, price, seller), one row
  per object and listing (source, listing_id, photo): the cross-venue history of an object.
- **Alerts:** a listing matching a lost object, one per object and listing whatever the
  number of re-checks (a unique key), acknowledged once (who, when) and closed when the
  object is recovered. Closing keeps the row: the history stays.
- **Subscriptions:** an account follows an institution, an object type or a case (a case
  watches objects through ``case_watches``); an alert is theirs when any subscription fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.errors import Conflict, NotFound
from storage.catalogue.orm import Base, ListingCheck, enum_type, utcnow
from storage.catalogue.records import aware
from storage.catalogue.sessions import Repository

__all__ = [
    "AlertRecord",
    "AlertRow",
    "AlertStore",
    "CaseWatch",
    "ListingFeatureRow",
    "ListingFeatures",
    "NewSighting",
    "RecheckRecord",
    "RecheckRow",
    "SightingRecord",
    "SightingRow",
    "Subscription",
    "SubscriptionKind",
    "SubscriptionRecord",
    "Webhook",
]


class SubscriptionKind(StrEnum):
    INSTITUTION = "institution"
    OBJECT_TYPE = "object_type"
    CASE = "case"


class ListingFeatureRow(Base):
    """One checked listing photo's local features and CNN vector (float32 bytes)."""

    __tablename__ = "listing_features"

    image_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: `models.local_features.LocalFeatures.to_bytes`, the strongest query keypoints.
    features: Mapped[bytes] = mapped_column(LargeBinary)
    method: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(200))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SightingRow(Base):
    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("object_id", "source", "listing_id", "image_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(1000))
    listing_id: Mapped[str] = mapped_column(String(300))
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str | None] = mapped_column(String(1000))
    url: Mapped[str | None] = mapped_column(String(2000))
    seller: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[str | None] = mapped_column(String(100))
    listed_on: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float | None] = mapped_column(Float)
    #: "check" (a listing check found it) or "recheck" (found when the object was reported).
    origin: Mapped[str] = mapped_column(String(20))
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subscription(Base):
    __tablename__ = "alert_subscriptions"
    __table_args__ = (UniqueConstraint("account_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[SubscriptionKind] = mapped_column(enum_type(SubscriptionKind, "subscription_kind"))
    value: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Webhook(Base):
    __tablename__ = "alert_webhooks"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2000))


class CaseWatch(Base):
    """A case following an object: its subscribers get the object's alerts."""

    __tablename__ = "case_watches"
    __table_args__ = (UniqueConstraint("case_id", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    object_id: Mapped[str] = mapped_column(String(200), index=True)


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("object_id", "source", "listing_id", "image_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(200), index=True)
    institution: Mapped[str] = mapped_column(String(200), index=True)
    object_type: Mapped[str | None] = mapped_column(String(500))
    object_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(1000))
    listing_id: Mapped[str] = mapped_column(String(300))
    image_sha256: Mapped[str] = mapped_column(String(64))
    listing_title: Mapped[str | None] = mapped_column(String(1000))
    url: Mapped[str | None] = mapped_column(String(2000))
    seller: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[str | None] = mapped_column(String(100))
    listed_on: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float] = mapped_column(Float)
    inliers: Mapped[int | None] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(Text)


class RecheckRow(Base):
    """One retroactive re-check run: what it covered and found, and how long it took."""

    __tablename__ = "rechecks"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(200), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    listings: Mapped[int] = mapped_column(Integer, default=0)
    #: Checked listings with no stored features (checked before migration 0009): not covered.
    without_features: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    new_alerts: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class ListingFeatures:
    """A checked listing (its identity and details) with its photo's stored features."""

    source: str
    listing_id: str
    image_sha256: str
    title: str | None
    url: str | None
    seller: str | None
    price: str | None
    listed_on: str | None
    features: bytes
    vector: np.ndarray | None


@dataclass(frozen=True)
class NewSighting:
    object_id: str
    source: str
    listing_id: str
    image_sha256: str
    title: str | None = None
    url: str | None = None
    seller: str | None = None
    price: str | None = None
    listed_on: str | None = None
    confidence: float | None = None
    origin: str = "check"


@dataclass(frozen=True)
class SightingRecord:
    id: int
    object_id: str
    source: str
    listing_id: str
    image_sha256: str
    title: str | None
    url: str | None
    seller: str | None
    price: str | None
    listed_on: str | None
    confidence: float | None
    origin: str
    seen_at: dt.datetime


@dataclass(frozen=True)
class AlertRecord:
    id: int
    object_id: str
    institution: str
    object_type: str | None
    object_status: str
    source: str
    listing_id: str
    image_sha256: str
    listing_title: str | None
    url: str | None
    seller: str | None
    price: str | None
    listed_on: str | None
    confidence: float
    inliers: int | None
    origin: str
    created_at: dt.datetime
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_reason: str | None

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class SubscriptionRecord:
    id: int
    account_id: int
    kind: SubscriptionKind
    value: str
    created_at: dt.datetime


@dataclass(frozen=True)
class RecheckRecord:
    id: int
    object_id: str
    requested_by: str
    status: str
    listings: int
    without_features: int
    hits: int
    new_alerts: int
    seconds: float | None
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


def _alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        **{f: getattr(row, f) for f in AlertRecord.__dataclass_fields__}  # type: ignore[arg-type]
        | {
            "created_at": aware(row.created_at),
            "acknowledged_at": aware(row.acknowledged_at),
            "closed_at": aware(row.closed_at),
        }
    )


def _sighting(row: SightingRow) -> SightingRecord:
    return SightingRecord(
        **{f: getattr(row, f) for f in SightingRecord.__dataclass_fields__}  # type: ignore[arg-type]
        | {"seen_at": aware(row.seen_at)}
    )


def _recheck(row: RecheckRow) -> RecheckRecord:
    return RecheckRecord(
        **{f: getattr(row, f) for f in RecheckRecord.__dataclass_fields__}  # type: ignore[arg-type]
        | {"started_at": aware(row.started_at), "finished_at": aware(row.finished_at)}
    )


#: Listings read per query in a re-check (a feature blob is ~100 KB).
_BATCH = 256


class AlertStore(Repository):
    # -- listing features -----------------------------------------------------------------

    def store_listing_features(
        self, *, image_sha256: str, features: bytes, method: str, model: str, vector: np.ndarray
    ) -> None:
        """Keep a listing photo's features once: the same photo on two venues is one row."""
        model_name, _, model_version = model.partition(" ")
        with self._session() as session:
            if session.get(ListingFeatureRow, image_sha256) is not None:
                return
            session.add(
                ListingFeatureRow(
                    image_sha256=image_sha256,
                    features=features,
                    method=method,
                    model=model_name,
                    model_version=model_version,
                    vector=np.asarray(vector, dtype=np.float32).tobytes(),
                )
            )

    def _checked(self) -> list[tuple[str, str, str]]:
        """(source, listing_id, sha256) of every listing checked without error, newest first."""
        with self._session() as session:
            rows = session.execute(
                select(ListingCheck.source, ListingCheck.listing_id, ListingCheck.image_sha256)
                .where(ListingCheck.error.is_(None), ListingCheck.image_sha256.is_not(None))
                .order_by(ListingCheck.id.desc())
            ).all()
        seen: dict[tuple[str, str, str], None] = {}
        for source, listing_id, sha in rows:
            if sha is not None:
                seen.setdefault((source, listing_id, sha), None)
        return list(seen)

    def count_checked(self) -> tuple[int, int]:
        """(checked listings with stored features, checked listings without)."""
        keys = self._checked()
        shas = {k[2] for k in keys}
        have: set[str] = set()
        with self._session() as session:
            ordered = sorted(shas)
            for start in range(0, len(ordered), 500):
                have.update(
                    session.scalars(
                        select(ListingFeatureRow.image_sha256).where(
                            ListingFeatureRow.image_sha256.in_(ordered[start : start + 500])
                        )
                    )
                )
        with_features = sum(1 for k in keys if k[2] in have)
        return with_features, len(keys) - with_features

    def iter_checked_listings(
        self, *, model: str | None = None, batch: int = _BATCH
    ) -> Iterator[list[ListingFeatures]]:
        """Every listing checked without error that has stored features, in batches; the
        vector only where it was made by ``model`` ("name version")."""
        stmt = (
            select(ListingCheck, ListingFeatureRow)
            .join(ListingFeatureRow, ListingFeatureRow.image_sha256 == ListingCheck.image_sha256)
            .where(ListingCheck.error.is_(None))
            .order_by(ListingCheck.id.desc())
        )
        seen: set[tuple[str, str, str]] = set()
        last_id: int | None = None
        while True:
            with self._session() as session:
                page = stmt if last_id is None else stmt.where(ListingCheck.id < last_id)
                rows = session.execute(page.limit(batch)).all()
            if not rows:
                return
            last_id = rows[-1][0].id
            out = []
            for check, feat in rows:
                key = (check.source, check.listing_id, feat.image_sha256)
                if key in seen:  # an older check of the same listing and photo
                    continue
                seen.add(key)
                same_model = model is None or f"{feat.model} {feat.model_version}" == model
                out.append(
                    ListingFeatures(
                        source=check.source,
                        listing_id=check.listing_id,
                        image_sha256=feat.image_sha256,
                        title=check.title,
                        url=check.url,
                        seller=check.seller,
                        price=check.price,
                        listed_on=check.listed_on,
                        features=feat.features,
                        vector=np.frombuffer(feat.vector, dtype=np.float32) if same_model else None,
                    )
                )
            if out:
                yield out

    # -- sightings -------------------------------------------------------------------------

    def record_sighting(self, sighting: NewSighting) -> bool:
        """Record that an object was seen in a listing; False if it was already known."""
        try:
            with self._session() as session:
                session.add(SightingRow(**sighting.__dict__))
        except Conflict:  # the unique key: seen before
            return False
        return True

    def sightings_of(self, object_id: str) -> list[SightingRecord]:
        """Where and when an object was seen, oldest listing date first, then first seen."""
        with self._session() as session:
            rows = session.scalars(
                select(SightingRow)
                .where(SightingRow.object_id == object_id)
                .order_by(SightingRow.seen_at, SightingRow.id)
            ).all()
        return [_sighting(r) for r in rows]

    def sightings_of_objects(self, object_ids: Iterable[str]) -> dict[str, list[SightingRecord]]:
        wanted = sorted(set(object_ids))
        out: dict[str, list[SightingRecord]] = {o: [] for o in wanted}
        with self._session() as session:
            for start in range(0, len(wanted), 500):
                rows = session.scalars(
                    select(SightingRow)
                    .where(SightingRow.object_id.in_(wanted[start : start + 500]))
                    .order_by(SightingRow.seen_at, SightingRow.id)
                ).all()
                for r in rows:
                    out[r.object_id].append(_sighting(r))
        return out

    # -- alerts ----------------------------------------------------------------------------

    def raise_alert(self, **fields: object) -> AlertRecord | None:
        """A new alert, or None when this object and listing already have one."""
        try:
            with self._session() as session:
                row = AlertRow(**fields)
                session.add(row)
                session.flush()
                return _alert(row)
        except Conflict:  # the unique key: this object and listing have one
            return None

    def get_alert(self, alert_id: int) -> AlertRecord:
        with self._session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"no alert {alert_id}")
            return _alert(row)

    def alerts(
        self,
        *,
        institutions: Sequence[str] | None = None,
        object_types: Sequence[str] | None = None,
        object_ids: Sequence[str] | None = None,
        everything: bool = False,
        open_only: bool = False,
        unacknowledged: bool = False,
        limit: int = 500,
    ) -> list[AlertRecord]:
        """Alerts of any of the institutions, object types or objects given (or all with
        ``everything``), newest first."""
        conds = []
        if institutions:
            conds.append(AlertRow.institution.in_(list(institutions)))
        if object_types:
            conds.append(AlertRow.object_type.in_(list(object_types)))
        if object_ids:
            conds.append(AlertRow.object_id.in_(list(object_ids)))
        if not conds and not everything:
            return []
        stmt = select(AlertRow)
        if conds and not everything:
            stmt = stmt.where(or_(*conds))
        if open_only:
            stmt = stmt.where(AlertRow.closed_at.is_(None))
        if unacknowledged:
            stmt = stmt.where(AlertRow.acknowledged_at.is_(None))
        with self._session() as session:
            rows = session.scalars(
                stmt.order_by(AlertRow.created_at.desc(), AlertRow.id.desc()).limit(limit)
            ).all()
        return [_alert(r) for r in rows]

    def acknowledge(self, alert_id: int, *, by: str) -> AlertRecord:
        """Acknowledge an alert (the first acknowledgement stands)."""
        with self._session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"no alert {alert_id}")
            if row.acknowledged_at is None:
                row.acknowledged_by = by
                row.acknowledged_at = utcnow()
            return _alert(row)

    def close_alerts_of(self, object_id: str, *, reason: str) -> int:
        """Close the object's open alerts; returns how many."""
        with self._session() as session:
            result = session.execute(
                update(AlertRow)
                .where(and_(AlertRow.object_id == object_id, AlertRow.closed_at.is_(None)))
                .values(closed_at=utcnow(), closed_reason=reason)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    # -- subscriptions, webhooks, case watches --------------------------------------------

    def subscribe(
        self, *, account_id: int, kind: SubscriptionKind, value: str
    ) -> SubscriptionRecord:
        with self._session() as session:
            row = session.scalars(
                select(Subscription).where(
                    Subscription.account_id == account_id,
                    Subscription.kind == kind,
                    Subscription.value == value,
                )
            ).first()
            if row is None:
                row = Subscription(account_id=account_id, kind=kind, value=value)
                session.add(row)
                session.flush()
            return SubscriptionRecord(
                id=row.id,
                account_id=row.account_id,
                kind=row.kind,
                value=row.value,
                created_at=aware(row.created_at),
            )

    def subscriptions(self, account_id: int | None = None) -> list[SubscriptionRecord]:
        stmt = select(Subscription).order_by(Subscription.id)
        if account_id is not None:
            stmt = stmt.where(Subscription.account_id == account_id)
        with self._session() as session:
            rows = session.scalars(stmt).all()
        return [
            SubscriptionRecord(
                id=r.id,
                account_id=r.account_id,
                kind=r.kind,
                value=r.value,
                created_at=aware(r.created_at),
            )
            for r in rows
        ]

    def unsubscribe(self, *, account_id: int, subscription_id: int) -> None:
        with self._session() as session:
            row = session.get(Subscription, subscription_id)
            if row is None or row.account_id != account_id:
                raise NotFound(f"no subscription {subscription_id}")
            session.delete(row)

    def set_webhook(self, *, account_id: int, url: str | None) -> None:
        with self._session() as session:
            row = session.get(Webhook, account_id)
            if url is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(Webhook(account_id=account_id, url=url))
            else:
                row.url = url

    def webhooks(self) -> dict[int, str]:
        with self._session() as session:
            return {r.account_id: r.url for r in session.scalars(select(Webhook))}

    def watch(self, *, case_id: int, object_id: str) -> None:
        """Let case ``case_id`` follow ``object_id`` (its subscribers get its alerts)."""
        with self._session() as session:
            exists = session.scalars(
                select(CaseWatch).where(
                    CaseWatch.case_id == case_id, CaseWatch.object_id == object_id
                )
            ).first()
            if exists is None:
                session.add(CaseWatch(case_id=case_id, object_id=object_id))

    def watched_objects(self, case_ids: Iterable[int]) -> list[str]:
        ids = sorted(set(case_ids))
        if not ids:
            return []
        with self._session() as session:
            return sorted(
                set(session.scalars(select(CaseWatch.object_id).where(CaseWatch.case_id.in_(ids))))
            )

    def cases_watching(self, object_id: str) -> list[int]:
        with self._session() as session:
            return sorted(
                session.scalars(select(CaseWatch.case_id).where(CaseWatch.object_id == object_id))
            )

    # -- re-check runs ---------------------------------------------------------------------

    def start_recheck(self, *, object_id: str, requested_by: str) -> RecheckRecord:
        with self._session() as session:
            row = RecheckRow(object_id=object_id, requested_by=requested_by, status="running")
            session.add(row)
            session.flush()
            return _recheck(row)

    def finish_recheck(self, recheck_id: int, **fields: object) -> RecheckRecord:
        with self._session() as session:
            row = session.get(RecheckRow, recheck_id)
            if row is None:
                raise NotFound(f"no re-check {recheck_id}")
            for key, value in fields.items():
                setattr(row, key, value)
            row.finished_at = utcnow()
            return _recheck(row)

    def rechecks(self, *, object_id: str | None = None, limit: int = 50) -> list[RecheckRecord]:
        stmt = select(RecheckRow).order_by(RecheckRow.id.desc()).limit(limit)
        if object_id is not None:
            stmt = stmt.where(RecheckRow.object_id == object_id)
        with self._session() as session:
            return [_recheck(r) for r in session.scalars(stmt).all()]
