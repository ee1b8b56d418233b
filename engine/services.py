"""The assembled parts of artmatch: built once from settings, shared by CLI, API and jobs.

Several processes may work on one catalogue at once (the service, CLI imports, a worker).
Each holds its indexes in memory, stamped with the catalogue's index version they reflect
(`storage.catalogue.index_state`: a counter the database bumps with every photo change).
`Services.refresh` compares the stamp with the catalogue's counter (one small SELECT) and,
when another process changed the photos, catches up in place: adds the photos it lacks from
their stored vectors and local features and drops those gone. Saves catch up first, and the
index files refuse to be replaced by an index reflecting an older version.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernel.errors import ArtmatchError
from kernel.settings import Settings
from storage.blobs import BlobStore, create_blob_store
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.index_state import IndexStates
from storage.descriptors.base import DescriptorIndex, DescriptorMeta
from storage.descriptors.registry import (
    create_descriptor_index,
    descriptor_index_type,
    load_descriptor_index,
)
from storage.features import FeatureStore
from storage.index.base import IndexMeta, VectorIndex, fingerprint_ids
from storage.index.registry import create_index, index_type, load_index
from storage.index.snapshots import latest_snapshot, load_snapshot, save_snapshot

if TYPE_CHECKING:
    from engine.search.filters import FilterCache
    from models.embedders import Embedder
    from models.local_features import LocalFeatures

__all__ = [
    "CATCH_UP_BATCH",
    "Services",
    "build_services",
    "catch_up_descriptors",
    "catch_up_vectors",
    "open_descriptor_index",
    "open_index",
    "snapshots_enabled",
    "rebuild_descriptors",
    "refresh_descriptors",
]

log = logging.getLogger(__name__)

#: Photos first read to estimate the descriptors per photo of a rebuilt descriptor index;
#: more are read when the lists it will train need more points (`_training_sample`).
TRAIN_PHOTOS = 200
#: Photos whose stored vectors or features a catch-up reads per query (SQLite allows 32,766
#: parameters in one statement; a batch of features is ~80 KB per photo, its blobs fetched in
#: parallel by `storage.features.FeatureStore.get_many`).
CATCH_UP_BATCH = 256


@dataclass
class Services:
    settings: Settings
    catalogue: Catalogue
    blobs: BlobStore
    embedder: Embedder
    index: VectorIndex
    #: Local descriptors of every photo with stored features (`open_descriptor_index`).
    descriptors: DescriptorIndex
    #: True when `open_index` had to rebuild the index from the catalogue.
    index_rebuilt: bool = field(default=False)
    #: `DescriptorMeta.version` of the descriptor index as last saved or loaded.
    descriptors_saved_version: int | None = field(default=None)
    #: `IndexMeta.version` of the index as last snapshotted or loaded; None: never.
    snapshot_version: int | None = field(default=None)
    #: Held while catching up with other processes: the service passes its write lock, so a
    #: catch-up never interleaves with an ingest or delete of its own.
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Search filters by catalogue version (`engine.search.filters`).
    filters: FilterCache = field(default_factory=lambda: _filter_cache())

    @property
    def index_states(self) -> IndexStates:
        """The catalogue's index version (made on first use: `Services` built by hand, as
        `artmatch fsck` does, need not pass it)."""
        states = self.__dict__.get("_index_states")
        if states is None or states.engine is not self.catalogue.engine:
            states = self.__dict__["_index_states"] = IndexStates(self.catalogue.engine)
        return states  # type: ignore[no-any-return]

    def refresh(self) -> bool:
        """Catch both indexes up with the catalogue if another process changed its photos
        since they were last brought up to date; returns whether anything changed.

        Costs one primary-key SELECT when nothing changed (run before every search); a
        catch-up reads only the ids, plus the vectors and features of the photos added.
        """
        version = self.index_states.version()
        behind = min(self.index.meta.catalogue_version, self.descriptors.meta.catalogue_version)
        if version <= behind:
            return False
        with self.lock:
            changed = catch_up_vectors(self, version=version)
            changed = catch_up_descriptors(self, version=version) or changed
        return changed

    def save_snapshot(self) -> None:
        """Snapshot the index to the blob store if it changed since the last snapshot (and
        snapshots are on); a failure is logged, never raised: the snapshot is an optimisation."""
        if not snapshots_enabled(self.settings) or self.index.meta.version == self.snapshot_version:
            return
        try:
            save_snapshot(self.blobs, self.index)
            self.snapshot_version = self.index.meta.version
        except ArtmatchError as exc:
            log.warning("index snapshot not saved: %s", exc)

    def save_descriptors(self) -> None:
        """Save the descriptor index if it changed since it was last saved or loaded.

        Not after every ingest batch like the vector index: the file is ~75 KB per photo.
        A crash loses the unsaved changes, and the next start sees the index is stale (its
        photos differ from the catalogue's) and rebuilds it from the stored features.
        """
        from models.local_features import FEATURES_KEY

        with self.lock:
            # Another process may have changed the photos: never save less than they hold.
            catch_up_descriptors(self, version=self.index_states.version())
            if self.descriptors.meta.version == self.descriptors_saved_version:
                return
            fingerprint = self.catalogue.local_feature_fingerprint(FEATURES_KEY)
            self.descriptors.meta.fingerprint = fingerprint
            self.descriptors.save()
            self.descriptors_saved_version = self.descriptors.meta.version

    def save_index(self) -> None:
        """Catch the vector index up with the catalogue, then save it (``auto`` appends the
        changes to its log; the save is skipped if a newer one is on disk)."""
        with self.lock:
            catch_up_vectors(self, version=self.index_states.version())
            # No fingerprint from SQL here (3.3 s at a million photos, per ingest batch): the
            # saved catalogue version says what the file reflects (`open_index`).
            self.index.save()

    def close(self) -> None:
        with self.lock:
            self.save_index()
            self.save_snapshot()
            self.save_descriptors()
        self.catalogue.close()


def _filter_cache() -> FilterCache:
    # Imported here: `engine.search` imports this module.
    from engine.search.filters import FilterCache

    return FilterCache()


def _chunks(ids: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(ids), CATCH_UP_BATCH):
        yield ids[start : start + CATCH_UP_BATCH]


def catch_up_vectors(services: Services, *, version: int) -> bool:
    """Make ``services.index`` hold exactly the catalogue's vectors of the current model if
    it reflects a catalogue version older than ``version`` (read before calling: what is read
    here is at least that new); returns whether it changed. Call with ``services.lock``."""
    index = services.index
    if version <= index.meta.catalogue_version:
        return False
    changed = _sync_vectors(index, services.catalogue, services.index_states, services.embedder)
    index.meta.catalogue_version = version
    return changed


def _sync_vectors(
    index: VectorIndex, catalogue: Catalogue, states: IndexStates, embedder: Embedder
) -> bool:
    """Add the catalogue's vectors ``index`` lacks and drop the ids it holds that the
    catalogue has no vector for (reads the ids, then only the vectors added)."""
    wanted = states.vector_ids(embedder.name, embedder.version)
    held = index.ids()
    gone = np.setdiff1d(held, wanted)
    missing = np.setdiff1d(wanted, held)
    if len(gone):
        index.remove(gone)
    added = 0
    for chunk in _chunks(missing):
        # A photo deleted since the ids were read is simply not found.
        found = catalogue.photo_vectors(chunk.tolist(), embedder.name, embedder.version)
        if found:
            ids = np.fromiter(found, dtype=np.int64, count=len(found))
            index.add(ids, np.stack([found[int(i)] for i in ids]))
            added += len(found)
    if added or len(gone):
        log.info("index caught up with the catalogue: %d added, %d removed", added, len(gone))
    return bool(added or len(gone))


def catch_up_descriptors(services: Services, *, version: int) -> bool:
    """`catch_up_vectors` for ``services.descriptors``, from the stored local features; an
    index the catch-up made outgrow its training is retrained (`refresh_descriptors`)."""
    from models.local_features import FEATURES_KEY

    index = services.descriptors
    if version <= index.meta.catalogue_version:
        return False
    added, removed = _sync_descriptors(index, services.catalogue, FEATURES_KEY)
    index.meta.catalogue_version = version
    if added or removed:
        log.info("descriptor index caught up: %d photo(s) added, %d removed", added, removed)
        refresh_descriptors(services)
    return bool(added or removed)


def _sync_descriptors(index: DescriptorIndex, catalogue: Catalogue, method: str) -> tuple[int, int]:
    """Add the photos with stored features ``index`` lacks, drop those it holds without;
    returns (photos added, photos removed)."""
    wanted = np.asarray(catalogue.local_feature_ids(method), dtype=np.int64)
    held = np.asarray(index.photo_ids(), dtype=np.int64)
    gone = np.setdiff1d(held, wanted)
    if len(gone):
        index.remove(gone)
    added = 0
    for chunk in _chunks(np.setdiff1d(wanted, held)):
        for photo_id, blob in catalogue.local_features(chunk.tolist(), method).items():
            index.add(photo_id, _photo_descriptors(photo_id, blob))
            added += 1
    return added, len(gone)


def snapshots_enabled(settings: Settings) -> bool:
    flag = settings.index.snapshots
    return flag if flag is not None else settings.storage.backend not in ("local", "memory")


def _refresh_snapshot(blobs: BlobStore, index: VectorIndex) -> None:
    """Snapshot a fresh local index if the blob store's snapshot lags behind it (a crash
    before `Services.close`, say); one small GET when it does not."""
    try:
        latest = latest_snapshot(blobs, index.meta.model, index.meta.model_version)
        if latest is None or latest.fingerprint != fingerprint_ids(index.ids()):
            save_snapshot(blobs, index)
    except ArtmatchError as exc:
        log.warning("index snapshot not refreshed: %s", exc)


def open_index(
    settings: Settings,
    catalogue: Catalogue,
    embedder: Embedder,
    *,
    force_rebuild: bool = False,
    blobs: BlobStore | None = None,
) -> tuple[VectorIndex, bool]:
    """The saved index, else the blob store's latest snapshot (with ``blobs`` and snapshots
    on), caught up with the catalogue if it reflects an older catalogue version; else one
    rebuilt from stored vectors (and then snapshotted).

    A saved index that reflects the catalogue's current version is trusted without reading
    SQL (the version is one small SELECT; the ids fingerprint took 3.3 s at a million)."""
    kind = settings.index.kind
    index_type(kind)  # an unknown kind is a `ConfigError` here, not a failed load and a rebuild
    states = IndexStates(catalogue.engine)
    # Read before any ids: what is read next is at least this new (`catch_up_vectors`).
    version = states.version()
    snapshots = blobs is not None and snapshots_enabled(settings)
    if not force_rebuild:
        try:
            index = load_index(
                kind, settings.index_path, model=embedder.name, model_version=embedder.version
            )
            _configure(index, settings)
            version = _not_behind(states, version, index.meta.catalogue_version)
            if index.meta.catalogue_version < version:
                _sync_vectors(index, catalogue, states, embedder)
            index.meta.catalogue_version = version
            index.meta.fingerprint = fingerprint_ids(index.ids())
            if snapshots:
                _refresh_snapshot(blobs, index)  # type: ignore[arg-type]
            return index, False
        except Exception as exc:  # IndexNotReady, or a file faiss cannot parse
            log.info("local index not usable: %s", exc)
        if snapshots:
            assert blobs is not None
            try:
                index = load_snapshot(
                    blobs,
                    model=embedder.name,
                    model_version=embedder.version,
                    directory=settings.index_path,
                    kind=kind,
                )
                _configure(index, settings)
                if _sync_vectors(index, catalogue, states, embedder):
                    log.info("index snapshot was stale: caught up with the catalogue")
                    _refresh_snapshot(blobs, index)
                index.meta.catalogue_version = version
                index.meta.fingerprint = fingerprint_ids(index.ids())
                index.save()  # the next start of this replica finds it locally
                return index, False
            except ArtmatchError as exc:
                log.info("index snapshot not usable: %s", exc)
    index = create_index(
        kind,
        directory=settings.index_path,
        meta=IndexMeta(
            model=embedder.name,
            model_version=embedder.version,
            dim=embedder.dim,
            catalogue_version=version,
        ),
    )
    _configure(index, settings)
    ids, vectors = catalogue.vectors(embedder.name, embedder.version)
    if len(ids):
        index.add(ids, vectors)
    del vectors
    index.meta.fingerprint = fingerprint_ids(ids)
    # A rebuild blocks the start anyway: ``auto`` trains here when past ``exact_up_to``
    # (an ingest batch's save never does; see `storage.index.training`).
    maybe_train = getattr(index, "maybe_train", None)
    if maybe_train is not None:
        maybe_train()
    index.save()
    if snapshots:
        assert blobs is not None
        try:
            save_snapshot(blobs, index)
        except ArtmatchError as exc:
            log.warning("index snapshot not saved: %s", exc)
    return index, True


def _configure(index: VectorIndex, settings: Settings) -> None:
    """Hand an index that scales (``auto``) the settings' parameters."""
    configure = getattr(index, "configure", None)
    if configure is not None:
        from storage.index.scalable import ScaleParams

        cfg = settings.index
        configure(
            ScaleParams(
                exact_up_to=cfg.exact_up_to,
                nprobe=cfg.nprobe,
                pq_m=cfg.pq_m,
                pca_dim=cfg.pca_dim,
                rerank=cfg.rerank,
            )
        )


def open_descriptor_index(
    settings: Settings, catalogue: Catalogue, *, force_rebuild: bool = False
) -> tuple[DescriptorIndex, bool]:
    """The saved descriptor index if it holds exactly the photos with stored local features
    (and has not outgrown its training); a saved one that differs (photos changed since it
    was saved: a crash, another process) is caught up with those features and saved; else
    one rebuilt from those features and saved. Returns it and whether it was rebuilt."""
    from models.local_features import FEATURES_KEY

    kind = settings.index.descriptor_kind
    descriptor_index_type(kind)  # an unknown kind is a `ConfigError`, not a rebuild
    states = IndexStates(catalogue.engine)
    version = states.version()  # before the ids are read, as in `open_index`
    fingerprint = catalogue.local_feature_fingerprint(FEATURES_KEY)
    if not force_rebuild:
        try:
            index = load_descriptor_index(kind, settings.index_path, features_key=FEATURES_KEY)
            version = _not_behind(states, version, index.meta.catalogue_version)
            index.meta.catalogue_version = version
            # Compare what the index really holds, not what its metadata claims.
            held = fingerprint_ids(index.photo_ids())
            if held != fingerprint and not index.outgrown:
                # Adding the few photos it lacks beats retraining on all of them (seconds
                # to minutes at a million descriptors).
                added, removed = _sync_descriptors(index, catalogue, FEATURES_KEY)
                log.info("descriptor index caught up: %d added, %d removed", added, removed)
                held = fingerprint_ids(index.photo_ids())
                if not index.outgrown:
                    index.meta.fingerprint = held
                    index.save()
            if not index.outgrown:
                return index, False
            log.info("descriptor index is outgrown (%d descriptors); rebuilding", index.size)
        except Exception as exc:  # IndexNotReady, or a file faiss cannot parse
            log.info("descriptor index not usable: %s", exc)
    index = create_descriptor_index(
        kind,
        directory=settings.index_path,
        meta=DescriptorMeta(features_key=FEATURES_KEY, catalogue_version=version),
    )
    _fill_descriptor_index(index, catalogue, FEATURES_KEY)
    index.meta.fingerprint = fingerprint
    index.save()
    return index, True


def _not_behind(states: IndexStates, version: int, saved: int) -> int:
    """The catalogue's version, raised to that of a saved index found newer (the database
    was restored from a backup): otherwise every later save would look older than that
    file and be refused (`storage.catalogue.index_state.IndexStates.raise_to`)."""
    if saved <= version:
        return version
    log.warning(
        "saved index reflects catalogue version %d, the catalogue is at %d (restored?)",
        saved,
        version,
    )
    states.raise_to(saved)
    return saved


def refresh_descriptors(services: Services) -> bool:
    """Rebuild the descriptor index from the stored features if it has outgrown its
    training (an IVF index trained on its first 10,000 descriptors searches a catalogue of
    200,000 several times slower than one trained for it); returns whether it did."""
    if not services.descriptors.outgrown:
        return False
    rebuild_descriptors(services)
    return True


def rebuild_descriptors(
    services: Services, *, held: Mapping[int, LocalFeatures] | None = None
) -> None:
    """Train a new descriptor index for the catalogue and fill it from the stored features,
    or from ``held`` for the photos it has (an ingest run's, still in memory: not read back
    from the blob store). The same index either way.

    The rebuilt index replaces the contents of ``services.descriptors`` in place, so a
    service's lock wrapper and every holder see it.
    """
    from models.local_features import FEATURES_KEY

    settings = services.settings
    rebuilt = create_descriptor_index(
        settings.index.descriptor_kind,
        directory=settings.index_path,
        meta=DescriptorMeta(features_key=FEATURES_KEY),
    )
    _fill_descriptor_index(rebuilt, services.catalogue, FEATURES_KEY, held=held)
    services.descriptors.adopt(rebuilt)
    log.info("descriptor index retrained for %d descriptors", services.descriptors.size)


def _photo_descriptors(photo_id: int, blob: bytes) -> np.ndarray:
    from models.local_features import LocalFeatures, matching_descriptors

    try:
        return matching_descriptors(LocalFeatures.from_bytes(blob))
    except ArtmatchError as exc:
        # Held with no descriptors: never found, and the next start does not rebuild again.
        log.warning("photo %d: stored local features unreadable (%s); not indexed", photo_id, exc)
        return np.zeros((0, 128), dtype=np.float32)


def _spread(ids: list[int], count: int) -> list[int]:
    """About ``count`` of ``ids``, evenly spread."""
    return ids[:: max(1, len(ids) // max(count, 1))]


def _descriptors_of(
    catalogue: Catalogue,
    ids: Sequence[int],
    method: str,
    held: Mapping[int, LocalFeatures] | None = None,
) -> dict[int, np.ndarray]:
    """``{photo id: descriptors}`` of ``ids``: from ``held`` where it has them, else from the
    stored features (one parallel batch of blob reads). A photo gone since is left out."""
    from models.local_features import matching_descriptors

    held = held or {}
    found = {pid: matching_descriptors(held[pid]) for pid in ids if pid in held}
    stored = catalogue.local_features([pid for pid in ids if pid not in held], method)
    found.update((pid, _photo_descriptors(pid, blob)) for pid, blob in stored.items())
    return found


def _training_sample(
    index: DescriptorIndex,
    catalogue: Catalogue,
    method: str,
    ids: list[int],
    held: Mapping[int, LocalFeatures] | None = None,
) -> tuple[np.ndarray, int]:
    """Descriptors of photos spread over the catalogue, as many as ``index`` wants to train
    for the expected total (`DescriptorIndex.training_points`), and that total.

    `TRAIN_PHOTOS` photos estimate the descriptors per photo. They alone once trained every
    rebuild: at 1.48M descriptors their 74k points capped the index at 1,024 lists of ~1,450
    descriptors, which tripled query time; the sample now grows to what the lists need."""
    chosen = _spread(ids, TRAIN_PHOTOS)
    parts = list(_descriptors_of(catalogue, chosen, method, held).values())
    per_photo = max(sum(len(p) for p in parts) / max(len(parts), 1), 1.0)
    expected = round(per_photo * len(ids))
    wanted = index.training_points(expected)
    photos = min(len(ids), math.ceil(1.1 * wanted / per_photo))
    if photos > len(chosen):
        more = sorted(set(_spread(ids, photos)) - set(chosen))
        parts += _descriptors_of(catalogue, more, method, held).values()
    return np.concatenate(parts), expected


def _fill_descriptor_index(
    index: DescriptorIndex,
    catalogue: Catalogue,
    method: str,
    held: Mapping[int, LocalFeatures] | None = None,
) -> None:
    """Train ``index`` on photos spread over the catalogue, then add every photo's
    descriptors in photo id order, a batch at a time (``held``: as `rebuild_descriptors`)."""
    ids = catalogue.local_feature_ids(method)
    if not ids:
        return
    sample, expected = _training_sample(index, catalogue, method, ids, held)
    index.train(sample, expected=expected)
    del sample
    # A batch's blobs are fetched in parallel, one batch at a time: memory stays bounded.
    for start in range(0, len(ids), CATCH_UP_BATCH):
        batch = _descriptors_of(catalogue, ids[start : start + CATCH_UP_BATCH], method, held)
        for photo_id in sorted(batch):
            index.add(photo_id, batch[photo_id])


def build_services(settings: Settings, *, embedder: Embedder | None = None) -> Services:
    """Open the catalogue, blob store, embedder and index named by ``settings``."""
    from models.embedders import create_embedder
    from models.images import configure_decoding

    # Every process (service, worker, CLI) builds its services here: the decode bound is
    # process-wide, so this is where it takes the settings' figures.
    configure_decoding(
        max_bytes=settings.max_decode_bytes, max_concurrent=settings.max_concurrent_decodes
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    blobs = create_blob_store(settings)
    # Local features live in the blob store, the rows only name them (storage.features).
    catalogue = create_catalogue(settings.database_url, features=FeatureStore(blobs))
    embedder = embedder or create_embedder(
        settings.embedder.model_copy(update={"model_dir": settings.model_path})
    )
    index, rebuilt = open_index(settings, catalogue, embedder, blobs=blobs)
    descriptors, _ = open_descriptor_index(settings, catalogue)
    return Services(
        settings=settings,
        catalogue=catalogue,
        blobs=blobs,
        embedder=embedder,
        index=index,
        descriptors=descriptors,
        index_rebuilt=rebuilt,
        descriptors_saved_version=descriptors.meta.version,
        # What was loaded or just rebuilt matches the blob store's snapshot (or needs none).
        snapshot_version=index.meta.version,
    )
