"""What the app builds at start-up and keeps on ``app.state.runtime``.

The catalogue database (accounts, sessions) opens at once so logins work immediately; the
embedder and vector index load in a worker thread, and `/api/v1/ready` says when they are.
Every write to the catalogue and the in-memory indexes goes through ``write_lock``; index reads
take the same lock only for the duration of the FAISS call (`LockedIndex`,
`LockedDescriptors`). Each request that needs the indexes first catches them up with what
other processes changed in the catalogue (`Services.refresh`), under the same lock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.services import Services, build_services
from kernel.errors import IndexNotReady
from kernel.settings import Settings, WebSettings
from service.security import LoginGuard
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.accounts import Accounts
from storage.catalogue.audit import AuditLog
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.jobs import Jobs
from storage.catalogue.search_log import SearchLog
from storage.descriptors.base import DescriptorIndex, DescriptorMeta
from storage.index.base import IndexMeta

if TYPE_CHECKING:
    from models.embedders import Embedder
    from service.jobs import JobRunner

__all__ = ["LockedDescriptors", "LockedIndex", "Runtime", "open_runtime"]


class LockedIndex:
    """A `VectorIndex` whose calls are serialised with the writers of the catalogue."""

    def __init__(self, inner: Any, lock: threading.RLock) -> None:
        self._inner = inner
        self._lock = lock

    @property
    def size(self) -> int:
        with self._lock:
            return int(self._inner.size)

    @property
    def meta(self) -> IndexMeta:
        return self._inner.meta  # type: ignore[no-any-return]

    @meta.setter
    def meta(self, value: IndexMeta) -> None:
        self._inner.meta = value

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock:
            self._inner.add(ids, vectors)

    def ids(self) -> np.ndarray:
        with self._lock:
            return self._inner.ids()

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        with self._lock:
            return int(self._inner.remove(ids))

    def search(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._inner.search(*args, **kwargs)

    def save(self) -> None:
        with self._lock:
            self._inner.save()

    def to_bytes(self) -> bytes:
        with self._lock:
            return bytes(self._inner.to_bytes())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class LockedDescriptors:
    """A `DescriptorIndex` whose calls are serialised with the writers of the catalogue."""

    def __init__(self, inner: Any, lock: threading.RLock) -> None:
        self._inner = inner
        self._lock = lock

    @property
    def meta(self) -> DescriptorMeta:
        return self._inner.meta  # type: ignore[no-any-return]

    @meta.setter
    def meta(self, value: DescriptorMeta) -> None:
        self._inner.meta = value

    @property
    def size(self) -> int:
        with self._lock:
            return int(self._inner.size)

    @property
    def outgrown(self) -> bool:
        with self._lock:
            return bool(self._inner.outgrown)

    def outgrown_after(self, counts: Sequence[int]) -> bool:
        with self._lock:
            return bool(self._inner.outgrown_after(counts))

    def photo_ids(self) -> np.ndarray:
        with self._lock:
            return self._inner.photo_ids()  # type: ignore[no-any-return]

    def add(self, photo_id: int, descriptors: np.ndarray) -> None:
        with self._lock:
            self._inner.add(photo_id, descriptors)

    def remove(self, photo_ids: Sequence[int] | np.ndarray) -> int:
        with self._lock:
            return int(self._inner.remove(photo_ids))

    def search(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            return self._inner.search(descriptors, k)  # type: ignore[no-any-return]

    def train(self, sample: np.ndarray, *, expected: int) -> None:
        with self._lock:
            self._inner.train(sample, expected=expected)

    def adopt(self, rebuilt: DescriptorIndex) -> None:
        with self._lock:
            self._inner.adopt(rebuilt)

    def save(self) -> None:
        with self._lock:
            self._inner.save()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Runtime:
    settings: Settings
    web: WebSettings
    catalogue: Catalogue
    accounts: Accounts
    search_log: SearchLog
    jobs: Jobs
    queries: CatalogueQueries
    audit: AuditLog
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    services: Services | None = None
    load_error: str | None = None
    job_runner: JobRunner | None = None

    @property
    def reports_dir(self) -> Path:
        return self.settings.home / "reports"

    @property
    def manifests_dir(self) -> Path:
        return self.settings.home / "manifests"

    def require_services(self) -> Services:
        """The services, caught up with photo changes made by other processes (a CLI import,
        a worker) since the last request: one small SELECT when there are none."""
        if self.services is None:
            raise IndexNotReady(self.load_error or "the model and index are still loading")
        self.services.refresh()
        return self.services

    def load_services(self, embedder: Embedder | None = None) -> None:
        """Build the embedder and index (blocking: call it from a worker thread)."""
        try:
            services = build_services(self.settings, embedder=embedder)
        except Exception as exc:
            self.load_error = f"loading the model and index failed: {exc}"
            raise
        self.services = dataclasses.replace(
            services,
            index=LockedIndex(services.index, self.write_lock),
            descriptors=LockedDescriptors(services.descriptors, self.write_lock),
            lock=self.write_lock,
        )

    def close(self) -> None:
        if self.job_runner is not None:
            self.job_runner.shutdown()
        if self.services is not None:
            with self.write_lock:
                self.services.close()
        self.accounts.engine.dispose()


def open_runtime(settings: Settings, web: WebSettings) -> Runtime:
    settings.home.mkdir(parents=True, exist_ok=True)
    # At the newest migration (a new SQLite file is migrated on the spot), or `ConfigError`.
    catalogue = create_catalogue(settings.database_url)
    engine = catalogue.engine
    return Runtime(
        settings=settings,
        web=web,
        catalogue=catalogue,
        accounts=Accounts(engine),
        search_log=SearchLog(engine),
        audit=AuditLog(engine),
        jobs=Jobs(engine),
        queries=CatalogueQueries(engine),
    )
