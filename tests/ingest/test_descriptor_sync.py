"""The descriptor index follows the catalogue: ingest adds, deletes remove, starts check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.services import Services, build_services, open_descriptor_index
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.errors import ConfigError
from kernel.settings import IndexSettings, Settings
from models.embedders import FakeEmbedder
from models.local_features import FEATURES_KEY, LocalFeatures, matching_descriptors
from service.operations.catalogue import _forget_photos
from storage.catalogue.browse import CatalogueQueries
from tests.utils.catalogue import write_catalogue


def _stock(services: Services, root: Path) -> None:
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(root, n_objects=3))))


def _photo_ids(services: Services, *objects: str) -> list[int]:
    return sorted(p.photo_id for o in objects for p in services.catalogue.photos_of(o))


def test_ingest_indexes_each_photo_s_stored_descriptors(services: Services, tmp_path: Path) -> None:
    _stock(services, tmp_path / "cat")
    ids = _photo_ids(services, "obj-0", "obj-1", "obj-2")
    assert list(services.descriptors.photo_ids()) == ids
    blobs = services.catalogue.local_features(ids, FEATURES_KEY)
    stored = {pid: matching_descriptors(LocalFeatures.from_bytes(b)) for pid, b in blobs.items()}
    assert services.descriptors.size == sum(len(d) for d in stored.values()) > 0
    _, photos, points = services.descriptors.search(stored[ids[1]][:5], k=1)
    assert list(photos[:, 0]) == [ids[1]] * 5 and list(points[:, 0]) == [0, 1, 2, 3, 4]


def test_the_descriptor_index_follows_deletes(settings: Settings, tmp_path: Path) -> None:
    services = build_services(settings, embedder=FakeEmbedder())
    _stock(services, tmp_path / "cat")
    gone = _photo_ids(services, "obj-1")
    kept = _photo_ids(services, "obj-0", "obj-2")
    # The service's path: delete the rows, then forget the photos in the indexes.
    _forget_photos(services, CatalogueQueries(services.catalogue.engine).delete_object("obj-1"))
    assert list(services.descriptors.photo_ids()) == kept
    services.close()

    reopened = build_services(settings, embedder=FakeEmbedder())
    try:
        assert list(reopened.descriptors.photo_ids()) == kept
        # Rebuilt from the stored features: the deleted photo's rows went with it.
        rebuilt, was_rebuilt = open_descriptor_index(
            settings, reopened.catalogue, force_rebuild=True
        )
        assert was_rebuilt and list(rebuilt.photo_ids()) == kept
        assert rebuilt.size == reopened.descriptors.size
        assert not set(gone) & set(rebuilt.photo_ids())
    finally:
        reopened.close()


def test_saved_index_is_reused_and_a_stale_one_caught_up(
    settings: Settings, tmp_path: Path
) -> None:
    services = build_services(settings, embedder=FakeEmbedder())
    _stock(services, tmp_path / "cat")
    services.close()
    index, rebuilt = open_descriptor_index(settings, services.catalogue)
    assert not rebuilt and index.size == services.descriptors.size

    # A crash: photos added after the last save are missing from the saved index.
    services = build_services(settings, embedder=FakeEmbedder())
    _stock(services, tmp_path / "more")  # same photos: duplicates, nothing changes
    extra = write_catalogue(tmp_path / "extra", n_objects=5)
    ingest_photos(services, list(iter_items(read_catalogue_csv(extra)))[3:])
    ids = np.asarray(services.descriptors.photo_ids())
    size = services.descriptors.size
    services.catalogue.close()  # no `close`: the descriptor index is not saved
    # The saved index lacks the two new photos: they are added, not everything retrained.
    index, rebuilt = open_descriptor_index(settings, services.catalogue)
    assert not rebuilt and list(index.photo_ids()) == list(ids) and index.size == size
    # ... and saved so caught up: the next start loads it as it is.
    again, rebuilt = open_descriptor_index(settings, services.catalogue)
    assert not rebuilt and list(again.photo_ids()) == list(ids)


def test_unknown_descriptor_kind_is_refused(settings: Settings) -> None:
    settings.index = IndexSettings(descriptor_kind="nope")
    with pytest.raises(ConfigError, match="unknown descriptor index kind 'nope'"):
        build_services(settings, embedder=FakeEmbedder())


def test_memory_kind_is_rebuilt_at_every_start(settings: Settings, tmp_path: Path) -> None:
    settings.index = IndexSettings(descriptor_kind="memory")
    services = build_services(settings, embedder=FakeEmbedder())
    _stock(services, tmp_path / "cat")
    services.close()
    index, rebuilt = open_descriptor_index(settings, services.catalogue)
    assert rebuilt and index.size == services.descriptors.size


def test_an_ingest_that_outgrows_the_descriptor_index_retrains_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.descriptors import faiss_index

    # Switch to the IVF layout early, so a small catalogue outgrows its first training.
    monkeypatch.setattr(faiss_index, "EXACT_MAX", 2600)
    services = build_services(settings, embedder=FakeEmbedder())
    try:
        root = tmp_path / "cat"
        ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(root, n_objects=60))))
        index = services.descriptors
        assert isinstance(index, faiss_index.FaissDescriptorIndex)
        assert index.layout == "ivf" and index.size > 2 * 2600
        # Trained for what it holds at the end of the run, not for its first 2,600.
        assert index.trained_for > index.size / 2 and not index.outgrown
        assert list(index.photo_ids()) == sorted(services.catalogue.local_feature_ids(FEATURES_KEY))
    finally:
        services.close()


def test_a_rebuild_reads_enough_photos_to_train_every_planned_list(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import services as engine_services
    from storage.descriptors import faiss_index

    services = build_services(settings, embedder=FakeEmbedder())
    root = write_catalogue(tmp_path / "cat", n_objects=40)
    ingest_photos(services, iter_items(read_catalogue_csv(root)))
    services.close()
    # Five photos' descriptors alone are too few to train even 64 lists.
    monkeypatch.setattr(engine_services, "TRAIN_PHOTOS", 5)
    monkeypatch.setattr(faiss_index, "EXACT_MAX", 1000)
    monkeypatch.setattr(faiss_index, "nlist_for", lambda expected: 64)
    index, rebuilt = open_descriptor_index(settings, services.catalogue, force_rebuild=True)
    assert rebuilt and isinstance(index, faiss_index.FaissDescriptorIndex)
    assert index.size > 64 * faiss_index.TRAIN_PER_LIST
    # Trained up front for the whole catalogue, not when adding crossed the exact limit.
    assert index.layout == "ivf" and index.lists == 64
    assert index.trained_for > 0.8 * index.size


def test_a_first_import_trains_once_on_the_features_it_holds(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    from engine import services as engine_services
    from storage.descriptors import faiss_index

    monkeypatch.setattr(faiss_index, "EXACT_MAX", 2600)
    index_type = faiss_index.FaissDescriptorIndex
    trainings: list[int] = []
    read_back: list[int] = []
    train, read = index_type.train, engine_services._photo_descriptors

    def spy_train(self: faiss_index.FaissDescriptorIndex, sample: np.ndarray, *, expected: int):
        trainings.append(expected)
        train(self, sample, expected=expected)

    def spy_read(photo_id: int, blob: bytes) -> np.ndarray:
        read_back.append(photo_id)
        return read(photo_id, blob)

    monkeypatch.setattr(index_type, "train", spy_train)
    monkeypatch.setattr(engine_services, "_photo_descriptors", spy_read)
    services = build_services(settings, embedder=FakeEmbedder())
    try:
        root = tmp_path / "cat"
        ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(root, n_objects=60))))
        index = services.descriptors
        assert isinstance(index, index_type) and index.layout == "ivf"
        # One training, for the whole run, on features still in memory: none read back.
        assert trainings == [index.trained_for] and not read_back
        # The very index a rebuild from the stored features makes.
        rebuilt, _ = open_descriptor_index(settings, services.catalogue, force_rebuild=True)
        assert isinstance(rebuilt, index_type) and read_back
        assert faiss.serialize_index(rebuilt._index).tobytes() == (
            faiss.serialize_index(index._index).tobytes()
        )
    finally:
        services.close()


def test_a_run_holds_a_bounded_number_of_descriptors(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import photos

    monkeypatch.setattr(photos, "HELD_DESCRIPTORS_MAX", 300)
    held: list[int] = []
    hold = photos._HeldFeatures.hold

    def spy_hold(self: photos._HeldFeatures, photo_id: int, features: LocalFeatures) -> None:
        hold(self, photo_id, features)
        held.append(self.count)

    monkeypatch.setattr(photos._HeldFeatures, "hold", spy_hold)
    root = write_catalogue(tmp_path / "cat", n_objects=8)
    ingest_photos(services, iter_items(read_catalogue_csv(root)))
    ids = sorted(services.catalogue.local_feature_ids(FEATURES_KEY))
    stored = services.catalogue.local_features(ids, FEATURES_KEY)
    assert max(held) <= 300 and len(held) == len(ids)
    assert list(services.descriptors.photo_ids()) == ids
    counts = [len(LocalFeatures.from_bytes(blob)) for blob in stored.values()]
    assert services.descriptors.size == sum(counts)
