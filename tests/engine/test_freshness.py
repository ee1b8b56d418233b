"""Several processes on one catalogue (`engine.services`): each sees the others' photo
changes at its next check, and none overwrites a newer saved index with an older one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from engine.services import Services, build_services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.fsck import check_store, saved_index
from ingest.photos import ingest_photos
from kernel.settings import Settings
from models.embedders import FakeEmbedder
from models.local_features import FEATURES_KEY
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.index_state import IndexStates
from storage.descriptors.registry import load_descriptor_index
from storage.index.registry import load_index
from tests.utils.catalogue import write_catalogue


@pytest.fixture
def two(settings: Settings):  # type: ignore[no-untyped-def]
    """Two processes' services on one home (the service and a CLI command, say)."""
    first = build_services(settings, embedder=FakeEmbedder())
    second = build_services(settings, embedder=FakeEmbedder())
    yield first, second
    for services in (first, second):
        services.catalogue.close()  # idempotent: some tests close them themselves


def _import(services: Services, root: Path, n_objects: int = 3) -> list[int]:
    csv_path = write_catalogue(root, n_objects=n_objects)
    outcomes = ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    return sorted(o.photo_id for o in outcomes if o.photo_id is not None)


def _vector(services: Services, photo_id: int) -> np.ndarray:
    emb = services.embedder
    return services.catalogue.photo_vectors([photo_id], emb.name, emb.version)[photo_id]


def test_photos_one_process_adds_are_found_by_the_other_at_its_next_check(
    two: tuple[Services, Services], tmp_path: Path
) -> None:
    cli, service = two
    added = _import(cli, tmp_path / "cat")
    assert service.index.size == 0
    assert service.refresh()
    assert sorted(service.index.ids()) == added
    assert list(service.descriptors.photo_ids()) == added
    _, found = service.index.search(_vector(cli, added[1]), 1)
    assert found[0, 0] == added[1]
    assert not service.refresh()  # nothing new: nothing to do

    # A delete by the other process is followed too (rows cascade; the triggers see it).
    gone = [p.photo_id for p in cli.catalogue.photos_of("obj-1")]
    CatalogueQueries(cli.catalogue.engine).delete_object("obj-1")
    assert service.refresh()
    assert sorted(service.index.ids()) == sorted(set(added) - set(gone))
    assert list(service.descriptors.photo_ids()) == sorted(set(added) - set(gone))


def test_a_process_behind_never_overwrites_the_newer_saved_index(
    two: tuple[Services, Services], settings: Settings, tmp_path: Path
) -> None:
    cli, service = two
    added = _import(cli, tmp_path / "cat")
    cli.close()
    # Raw saves of indexes that know nothing of those photos are refused ...
    service.index.save()
    service.descriptors.meta.fingerprint = "stale"
    service.descriptors.save()
    fake = FakeEmbedder()
    on_disk = load_index(
        settings.index.kind, settings.index_path, model=fake.name, model_version=fake.version
    )
    assert sorted(on_disk.ids()) == added
    descriptors = load_descriptor_index("faiss", settings.index_path, features_key=FEATURES_KEY)
    assert list(descriptors.photo_ids()) == added

    # ... and the process's own saves catch up first: its change and the other's are kept.
    [mine] = _import(service, tmp_path / "more", n_objects=4)[-1:]
    service.close()
    on_disk = load_index(
        settings.index.kind, settings.index_path, model=fake.name, model_version=fake.version
    )
    assert sorted(on_disk.ids()) == sorted([*added, mine])
    descriptors = load_descriptor_index("faiss", settings.index_path, features_key=FEATURES_KEY)
    assert list(descriptors.photo_ids()) == sorted([*added, mine])
    reopened = build_services(settings, embedder=FakeEmbedder())
    try:
        assert not reopened.index_rebuilt
        index, source = saved_index(settings, reopened.blobs, reopened.embedder)
        report = check_store(
            catalogue=reopened.catalogue,
            blobs=reopened.blobs,
            embedder=reopened.embedder,
            index=index,
            index_source=source,
            settings=settings,
        )
        assert report.consistent, report.lines()
    finally:
        reopened.close()


def test_a_check_with_nothing_new_is_one_select(services: Services) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = services.catalogue.engine
    services.refresh()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert not services.refresh()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1 and "index_state" in statements[0]


def test_a_saved_index_newer_than_the_catalogue_raises_its_version(
    settings: Settings, tmp_path: Path
) -> None:
    # The database restored from a backup older than the index files: counting on from the
    # backup's version would make every later save look older than the files on disk.
    services = build_services(settings, embedder=FakeEmbedder())
    _import(services, tmp_path / "cat")
    services.close()
    states = IndexStates(services.catalogue.engine)
    saved = states.version()
    with services.catalogue.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE index_state SET version = 1")
    reopened = build_services(settings, embedder=FakeEmbedder())
    try:
        assert states.version() == saved and reopened.index.meta.catalogue_version == saved
        [new] = _import(reopened, tmp_path / "more", n_objects=4)[-1:]
        reopened.save_index()
        fake = FakeEmbedder()
        index = load_index(
            settings.index.kind, settings.index_path, model=fake.name, model_version=fake.version
        )
        assert new in index.ids()
    finally:
        reopened.close()
