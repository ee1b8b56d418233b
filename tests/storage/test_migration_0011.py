"""Migration 0011: a catalogue at 0010 holding local features in its rows keeps them readable,
its index-version triggers on ``local_features`` keep firing, and the rows can be moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from models.local_features import FEATURES_KEY
from storage.blobs import MemoryBlobStore
from storage.catalogue import create_catalogue
from storage.catalogue.index_state import IndexStates
from storage.features import FeatureStore
from storage.migrate import alembic_config, head_revision, upgrade
from tests.utils.catalogue import add_feature_photo


def test_0011_keeps_feature_rows_and_triggers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    # Rows with their bytes inline, as 0010's schema held them; then back to 0010.
    catalogue = create_catalogue(url)
    ids = [add_feature_photo(catalogue, i, bytes([i]) * 100) for i in (1, 2)]
    catalogue.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0010")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM local_features")).scalar() == 2
    assert upgrade(engine) == ("0010", head_revision())
    engine.dispose()

    store = MemoryBlobStore()
    catalogue = create_catalogue(url, features=FeatureStore(store))
    try:
        one, two = ids
        assert catalogue.local_features(ids, FEATURES_KEY) == {
            one: bytes([1]) * 100,
            two: bytes([2]) * 100,
        }
        states = IndexStates(catalogue.engine)
        before = states.version()
        catalogue.drop_local_features([two])  # a DELETE on local_features still bumps it
        assert states.version() > before
        before = states.version()
        catalogue.store_local_features(two, FEATURES_KEY, b"new")  # and an INSERT
        assert states.version() > before
        assert catalogue.move_features_to_blobs() == 1
        assert catalogue.local_features(ids, FEATURES_KEY) == {one: bytes([1]) * 100, two: b"new"}
        assert len(store.blobs) == 2
    finally:
        catalogue.close()


def test_0011_downgrade_refuses_when_features_were_moved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    catalogue = create_catalogue(url, features=FeatureStore(MemoryBlobStore()))
    add_feature_photo(catalogue, 1, b"x")
    catalogue.close()
    engine = create_engine(url)
    with pytest.raises(RuntimeError, match="blob store"), engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0010")
    engine.dispose()
