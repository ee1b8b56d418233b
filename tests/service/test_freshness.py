"""The running service and a CLI command on one catalogue: the service finds what the CLI
imported at its next request, and its own saves keep the CLI's photos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.services import build_services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.fsck import check_store, saved_index
from ingest.photos import ingest_photos
from kernel.settings import Settings
from models.embedders import FakeEmbedder
from service.runtime import Runtime
from storage.index.registry import load_index
from tests.service.conftest import Api
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _search(api: Api, seed: int) -> list[str]:
    query = jpeg_bytes(photographed(textured_object(seed), seed=5))
    r = api.as_("inv", "POST", "/api/v1/searches", files={"file": ("q.jpg", query, "image/jpeg")})
    assert r.status_code == 200, r.text
    return [h["object_id"] for h in r.json()["hits"] if h["is_match"]]


def _upload_one(api: Api) -> None:
    r = api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": "A-9"})
    assert r.status_code == 201, r.text
    files = [("files", ("p.jpg", jpeg_bytes(textured_object(9)), "image/jpeg"))]
    r = api.as_("reg_a", "POST", "/api/v1/objects/A-9/photos", files=files)
    assert r.status_code == 201, r.text


def _runtime(api: Api) -> Runtime:
    return api.client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


def _consistent_after_close(settings: Settings, photos: int) -> None:
    services = build_services(settings, embedder=FakeEmbedder())
    try:
        assert not services.index_rebuilt and services.index.size == photos
        index, source = saved_index(settings, services.blobs, services.embedder)
        report = check_store(
            catalogue=services.catalogue,
            blobs=services.blobs,
            embedder=services.embedder,
            index=index,
            index_source=source,
            settings=settings,
        )
        assert report.consistent, report.lines()
    finally:
        services.close()


def test_the_service_finds_a_cli_import_and_its_saves_keep_it(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    assert _search(api, 2) == []
    # What `artmatch import-catalogue` does, in this process: its own services, its own save.
    cli = build_services(settings, embedder=FakeEmbedder())
    ingest_photos(cli, iter_items(read_catalogue_csv(write_catalogue(tmp_path, n_objects=3))))
    cli.close()
    assert _search(api, 2) == ["obj-2"]  # no restart

    _upload_one(api)  # the service saves its index: with the CLI's three photos
    fake = FakeEmbedder()
    on_disk = load_index(
        settings.index.kind, settings.index_path, model=fake.name, model_version=fake.version
    )
    assert on_disk.size == 4
    _runtime(api).close()  # what the app's shutdown does
    _consistent_after_close(settings, photos=4)


@pytest.mark.integration
def test_a_cli_process_importing_while_the_service_runs(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=3)
    env = os.environ | {"ARTMATCH_HOME": str(settings.home), "ARTMATCH_EMBEDDER__NAME": "fake"}
    proc = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()"]
        + ["import-catalogue", str(csv_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert _search(api, 1) == ["obj-1"]
    _upload_one(api)
    _runtime(api).close()
    _consistent_after_close(settings, photos=4)
