"""The catalogue's index version: bumped by the database with every photo change, whatever
path made it, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.enums import ObjectStatus
from kernel.schemas import ObjectCreate, StatusChange
from models.local_features import FEATURES_KEY
from storage.catalogue import NewPhoto, create_catalogue
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.index_state import IndexStates
from storage.migrate import upgrade
from tests.utils.catalogue import write_catalogue
from tests.utils.servers import find_postgres, postgres_schema


def test_every_photo_change_bumps_the_version_and_nothing_else(
    services: Services, tmp_path: Path
) -> None:
    states = IndexStates(services.catalogue.engine)
    catalogue = services.catalogue
    start = states.version()
    assert start >= 1  # the migration's row
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(tmp_path, n_objects=3))))
    added = states.version()
    assert added > start

    # Object records and statuses are read at search time: no index change.
    catalogue.upsert_object(ObjectCreate(object_id="obj-0", institution="default", title="New"))
    catalogue.set_status("obj-0", StatusChange(status=ObjectStatus.STOLEN))
    CatalogueQueries(catalogue.engine).update_object("obj-1", {"title": "Renamed"})
    assert states.version() == added

    # Stored features written on their own (`fsck --repair`), and a cascaded delete.
    [photo] = catalogue.photos_of("obj-2")
    CatalogueQueries(catalogue.engine).delete_object("obj-2")
    deleted = states.version()
    assert deleted > added
    [kept] = catalogue.photos_of("obj-1")
    blob = catalogue.local_features([kept.photo_id], FEATURES_KEY)[kept.photo_id]
    catalogue.store_local_features(kept.photo_id, "other/method", blob)
    assert states.version() > deleted
    assert photo.photo_id not in catalogue.local_feature_ids(FEATURES_KEY)


def test_the_version_is_only_ever_raised(services: Services) -> None:
    states = IndexStates(services.catalogue.engine)
    now = states.version()
    states.raise_to(now - 1)
    assert states.version() == now
    states.raise_to(now + 40)
    assert states.version() == now + 40


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalogue.sqlite3'}"
        return
    with postgres_schema(find_postgres()) as pg_url:
        raw = create_catalogue(pg_url, check_schema=False)
        upgrade(raw.engine)
        raw.close()
        yield pg_url


def test_the_triggers_on_both_databases_and_across_connections(url: str) -> None:
    writer, reader = create_catalogue(url), create_catalogue(url)
    try:
        states = IndexStates(reader.engine)
        start = states.version()
        sha = "ab" * 32
        vector = np.ones(8, dtype=np.float32) / np.sqrt(8)
        ref = writer.add_photo(
            record=ObjectCreate(object_id="o-1", institution="m"),
            photo=NewPhoto(sha, f"photos/ab/{sha}", f"thumbnails/ab/{sha}.jpg", 8, 8, "PNG"),
            model="fake",
            model_version="1",
            vector=vector,
            local_features=("rootsift/640/1000", b"x"),
        )
        added = states.version()  # committed by another connection: seen at once
        assert added > start
        assert list(states.vector_ids("fake", "1")) == [ref.photo_id]
        writer.set_status("o-1", StatusChange(status=ObjectStatus.STOLEN))
        assert states.version() == added
        CatalogueQueries(writer.engine).delete_object("o-1")  # embeddings and features cascade
        assert states.version() > added
        assert list(states.vector_ids("fake", "1")) == []
    finally:
        writer.close()
        reader.close()
