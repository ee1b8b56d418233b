"""numpy's BLAS held to the configured threads by every entry point's start-up
(`kernel.threads`): the service's lifespan, the worker and every CLI command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from cli.main import app as cli_app
from engine.services import Services
from kernel.settings import Settings, ThreadSettings
from kernel.threads import blas_threads, configure_threads
from models.embedders import FakeEmbedder
from service.main import create_app
from service.worker import run_worker


@pytest.fixture
def two_blas_threads() -> Iterator[None]:
    """BLAS at two threads (as a fresh process on two cores), restored afterwards."""
    limits = threadpool_limits(limits=2, user_api="blas")
    assert set(blas_threads().values()) == {2}
    yield
    limits.restore_original_limits()


def _threads() -> set[int]:
    return set(blas_threads().values())


def test_configure_threads_sets_blas_and_zero_leaves_it(two_blas_threads: None) -> None:
    configure_threads(ThreadSettings(blas=0))
    assert _threads() == {2}
    configure_threads(ThreadSettings(blas=3))
    assert _threads() == {3}
    configure_threads(ThreadSettings())
    assert _threads() == {1}


def test_the_service_starts_with_one_blas_thread(
    two_blas_threads: None, settings: Settings
) -> None:
    with TestClient(create_app(settings, embedder=FakeEmbedder())):
        assert _threads() == {1}


def test_the_worker_starts_with_one_blas_thread(
    two_blas_threads: None, settings: Settings, services: Services
) -> None:
    run_worker(settings, once=True, services=services)
    assert _threads() == {1}


def test_every_cli_command_starts_with_one_blas_thread(
    two_blas_threads: None, settings: Settings
) -> None:
    result = CliRunner().invoke(cli_app, ["--home", str(settings.home), "db", "current"])
    assert result.exit_code == 0, result.output
    assert _threads() == {1}
