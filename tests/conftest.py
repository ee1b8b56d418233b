from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.services import Services, build_services
from kernel.settings import EmbedderSettings, IngestSettings, Settings
from models.embedders import FakeEmbedder


@pytest.fixture(scope="session")
def migrated_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite catalogue at the newest migration, made once per test session: tests
    start from a copy instead of migrating a new file each (tests of the migrations do)."""
    from storage.catalogue import create_catalogue

    path = tmp_path_factory.mktemp("template") / "catalogue.sqlite3"
    create_catalogue(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_catalogue: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(migrated_catalogue, home / "catalogue.sqlite3")
    # Photos prepared in this process: a pool of workers per ingest would slow the fast suite
    # (tests/ingest/test_prepare.py runs the pool).
    return Settings(
        home=home,
        embedder=EmbedderSettings(name="fake", batch_size=4),
        ingest=IngestSettings(workers=1),
    )


@pytest.fixture
def services(settings: Settings) -> Services:
    svc = build_services(settings, embedder=FakeEmbedder())
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def real_embedder(tmp_path_factory: pytest.TempPathFactory):
    """The default CNN (weights from the installed package), loaded once per test session."""
    from models.embedders import create_embedder

    # Its ONNX export goes to the session's temporary directory, not the user's home.
    return create_embedder(EmbedderSettings(model_dir=tmp_path_factory.mktemp("models")))


@pytest.fixture
def real_services(settings: Settings, real_embedder) -> Services:
    svc = build_services(settings, embedder=real_embedder)
    yield svc
    svc.close()
