from __future__ import annotations

from pathlib import Path

import pytest

from engine.services import Services, build_services
from kernel.settings import EmbedderSettings, Settings
from models.embedders import FakeEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", embedder=EmbedderSettings(name="fake", batch_size=4))


@pytest.fixture
def services(settings: Settings) -> Services:
    svc = build_services(settings, embedder=FakeEmbedder())
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def real_embedder():
    """The default CNN (weights from the installed package), loaded once per test session."""
    from models.embedders import create_embedder

    return create_embedder(EmbedderSettings())


@pytest.fixture
def real_services(settings: Settings, real_embedder) -> Services:
    svc = build_services(settings, embedder=real_embedder)
    yield svc
    svc.close()
