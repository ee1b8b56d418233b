"""The catalogue's index version: how processes sharing one catalogue notice each other's
photo changes (table ``index_state``; the migrations own it and its triggers).

One row, ``photos``, holds a counter that database triggers bump in the same transaction as
every insert, update or delete of a stored vector (``embeddings``) or of stored local
features (``local_features``), whichever process or code path made it, cascaded deletes
included (migration 0006). A process whose in-memory indexes reflect version ``v`` and reads
a larger one knows another writer changed the photos and catches up
(`engine.services.Services.refresh`); the saved index files carry the version they reflect,
so that no process overwrites a newer file with an older one.

One row rather than one per index: PostgreSQL locks the row a trigger updates until the
transaction ends, and two rows bumped in different orders (an insert touches vectors first,
a cascaded delete may touch features first) could deadlock two writers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import BigInteger, DateTime, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from storage.catalogue.orm import Base, Embedding, utcnow
from storage.catalogue.sessions import Repository

__all__ = ["PHOTOS", "IndexState", "IndexStates"]

#: The row the triggers bump (migration 0006 inserts it).
PHOTOS = "photos"


class IndexState(Base):
    __tablename__ = "index_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IndexStates(Repository):
    def version(self, name: str = PHOTOS) -> int:
        """The current version: one primary-key SELECT, run before every search."""
        with self._session() as session:
            value = session.scalar(select(IndexState.version).where(IndexState.name == name))
        return int(value or 0)

    def raise_to(self, version: int, *, name: str = PHOTOS) -> None:
        """Make the counter at least ``version``. A saved index newer than the catalogue means
        the database went back (a restored backup): counting on from below would make every
        later save look older than that file and be refused."""
        with self._session() as session:
            session.execute(
                update(IndexState)
                .where(IndexState.name == name, IndexState.version < version)
                .values(version=version, updated_at=utcnow())
            )

    def vector_ids(self, model: str, model_version: str) -> np.ndarray:
        """The photo ids with a vector of that model version, sorted (a catch-up's diff)."""
        with self._session() as session:
            ids = session.scalars(
                select(Embedding.photo_id)
                .where(Embedding.model == model, Embedding.model_version == model_version)
                .order_by(Embedding.photo_id)
            ).all()
        return np.asarray(ids, dtype=np.int64)
