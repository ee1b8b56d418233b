"""Local features in a real S3 bucket (Ceph RGW from scripts/start-s3.sh): a catalogue keeps
only references, reads a batch of candidates in parallel, and a lost blob is left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.local_features import FEATURES_KEY
from storage.catalogue import create_catalogue
from storage.features import FEATURES_PREFIX, FeatureStore
from storage.s3 import S3BlobStore
from tests.utils.catalogue import add_feature_photo
from tests.utils.servers import S3Server, find_s3, s3_bucket

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_server() -> S3Server:
    return find_s3()


@pytest.fixture
def store(s3_server: S3Server) -> Iterator[S3BlobStore]:
    with s3_bucket(s3_server) as bucket:
        yield S3BlobStore(
            endpoint=s3_server.endpoint,
            bucket=bucket,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            secure=False,
        )


def test_features_round_trip_through_s3(
    store: S3BlobStore, tmp_path: Path, migrated_catalogue: Path
) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(migrated_catalogue.read_bytes())
    catalogue = create_catalogue(f"sqlite:///{path}", features=FeatureStore(store))
    try:
        data = {}
        for i in range(24):
            pid = add_feature_photo(catalogue, i, bytes([i]) * 1000, model="m")
            data[pid] = bytes([i]) * 1000
        assert catalogue.features_in_rows() == 0
        assert len(list(store.keys(FEATURES_PREFIX))) == 24
        assert catalogue.local_features(data, FEATURES_KEY) == data
        lost_pid, lost_key = catalogue.feature_refs()[0]
        store.delete(lost_key)
        got = catalogue.local_features(data, FEATURES_KEY)
        assert set(got) == set(data) - {lost_pid}
    finally:
        catalogue.close()
        for key in list(store.keys(FEATURES_PREFIX)):
            store.delete(key)
