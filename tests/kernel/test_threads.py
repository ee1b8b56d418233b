"""numpy's BLAS held to the configured threads by every entry point's start-up
(`kernel.threads`): the service's lifespan, the worker and every CLI command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS's default is 1 too")
def test_a_blas_loaded_after_the_start_takes_the_limit_too() -> None:
    # The CLI sets the threads before numpy is imported. threadpoolctl alone then found
    # nothing to limit, and numpy's and OpenCV's OpenBLAS ran a thread per core whose
    # spinning between calls took CPU from the ingest's workers.
    code = (
        "import json\n"
        "from kernel.settings import ThreadSettings\n"
        "from kernel.threads import blas_threads, configure_threads\n"
        "configure_threads(ThreadSettings(blas=1))\n"
        "import numpy, cv2\n"
        "print(json.dumps(blas_threads()))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    threads = json.loads(done.stdout.splitlines()[-1])
    assert any("numpy" in path for path in threads)
    assert set(threads.values()) == {1}, threads
