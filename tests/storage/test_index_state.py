"""The catalogue's index version: bumped by the database with every photo change, whatever
path made it, and nothing else."""

from __future__ import annotations

from pathlib import Path

from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.enums import ObjectStatus
from kernel.schemas import ObjectCreate, StatusChange
from models.local_features import FEATURES_KEY
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.index_state import IndexStates
from tests.utils.catalogue import write_catalogue


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
