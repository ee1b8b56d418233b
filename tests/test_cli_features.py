"""`artmatch db move-features`: rows from before migration 0011 moved to the blob store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from kernel.settings import Settings
from models.local_features import FEATURES_KEY
from storage.blobs import LocalBlobStore
from storage.catalogue import create_catalogue
from storage.features import FEATURES_PREFIX, FeatureStore
from tests.utils.catalogue import add_feature_photo

runner = CliRunner()


def test_move_features_moves_rows_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    catalogue = create_catalogue(settings.database_url)  # no store: bytes stay in the rows
    for i in range(3):
        add_feature_photo(catalogue, i, bytes([i]) * 10)
    assert catalogue.features_in_rows() == 3
    catalogue.close()

    result = runner.invoke(app, ["--home", str(home), "db", "move-features"])
    assert result.exit_code == 0, result.output
    assert "moved the local features of 3 photo(s)" in result.output
    result = runner.invoke(app, ["--home", str(home), "db", "move-features"])
    assert "moved the local features of 0 photo(s)" in result.output

    store = LocalBlobStore(settings.blob_path)
    assert len(list(store.keys(FEATURES_PREFIX))) == 3
    catalogue = create_catalogue(settings.database_url, features=FeatureStore(store))
    try:
        assert catalogue.features_in_rows() == 0
        assert len(catalogue.local_features(range(1, 4), FEATURES_KEY)) == 3
    finally:
        catalogue.close()
