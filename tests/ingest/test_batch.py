"""Batch listing checks: chunks computed anywhere, committed once by the client (fakes), and
on a real Dask LocalCluster (integration): same results as in-process, and a run killed
with SIGKILL resumes with nothing lost or repeated."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from engine.services import Services
from ingest.batch.work import (
    ListingOutcome,
    ListingTask,
    chunked,
    commit_chunk,
    compute_chunk,
)
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.listings import check_listings, write_report
from ingest.photos import ingest_photos
from ingest.recheck import ListingDetails
from kernel.enums import ObjectStatus
from kernel.schemas import StatusChange
from storage.catalogue.orm import ListingCheck
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object

ROOT = Path(__file__).resolve().parents[2]


def _stolen_catalogue(services: Services, tmp_path: Path) -> None:
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(tmp_path / "museum"))))
    for object_id in ("obj-1", "obj-2"):
        services.catalogue.set_status(object_id, StatusChange(status=ObjectStatus.STOLEN))
    # Workers load the indexes from their files, as a second process would.
    services.save_index()
    services.save_descriptors()


def _listings(folder: Path, n: int, *, broken: Iterable[int] = (), gone: bool = True) -> Path:
    """``n`` listings: every third shows a stolen object, the others unrelated objects;
    ``broken`` ones have a photo that does not decode; ``gone``: one more, without a photo."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"p{i}.jpg"
        if i in broken:
            data = b"not a photo"
        elif i % 3 == 0:
            data = jpeg_bytes(photographed(textured_object(1 + (i // 3) % 2), seed=i))
        else:
            data = jpeg_bytes(textured_object(100 + i))
        (folder / name).write_bytes(data)
        rows.append({"listing_id": f"L{i}", "image": name, "title": f"lot {i}"})
    if gone:
        rows.append({"listing_id": "gone", "image": "missing.jpg"})
    path = folder / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _check_rows(services: Services) -> list[tuple[str, str, str | None]]:
    with services.catalogue.engine.connect() as conn:
        rows = conn.execute(
            select(ListingCheck.source, ListingCheck.listing_id, ListingCheck.image_sha256)
        ).all()
    return sorted((s, lid, sha) for s, lid, sha in rows)


def _report(services: Services, run, stem: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    _, json_path = write_report(services, run, stem)
    report = json.loads(json_path.read_text())
    report["hits"] = sorted(
        (h["listing_id"], h["object_id"], round(h["similarity"], 4)) for h in report["hits"]
    )
    return report


class _Shuffled:
    """A mapper that computes in-process but hands chunks back last first, like a cluster
    whose workers finish out of order."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.chunk_sizes: list[int] = []

    def map(
        self, chunks: Iterable[list[ListingTask]]
    ) -> Generator[list[ListingOutcome], None, None]:
        done = [compute_chunk(self.services, chunk) for chunk in chunks]
        self.chunk_sizes = [len(c) for c in done]
        yield from reversed(done)


def test_chunked_keeps_every_task_in_order() -> None:
    assert [list(c) for c in chunked(iter(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]  # type: ignore[arg-type]
    assert list(chunked(iter([]), 3)) == []


def test_chunks_out_of_order_give_the_in_process_result(services: Services, tmp_path: Path) -> None:
    _stolen_catalogue(services, tmp_path)
    manifest = _listings(tmp_path / "a", 5, broken=[2])
    services.settings = services.settings.model_copy(
        update={"batch": services.settings.batch.model_copy(update={"chunk_size": 2})}
    )
    mapper = _Shuffled(services)
    run = check_listings(services, manifest, mapper=mapper)
    assert mapper.chunk_sizes == [2, 2, 1]  # 5 photos; "gone" never leaves the client
    assert (run.total, run.checked, run.hits) == (6, 4, 2)
    # Errors in manifest order, whichever chunk came back first.
    assert [e.split(":")[0] for e in run.errors] == ["listing L2", "listing gone"]
    assert len(run.new_alerts) == 2
    shuffled = _report(services, run, tmp_path / "shuffled")

    # The same manifest under another name, checked one listing after another.
    (tmp_path / "a" / "m.jsonl").rename(tmp_path / "a" / "n.jsonl")
    plain = check_listings(services, tmp_path / "a" / "n.jsonl", scheduler="none")
    assert (plain.checked, plain.hits, plain.errors) == (run.checked, run.hits, run.errors)
    assert _report(services, plain, tmp_path / "plain")["hits"] == shuffled["hits"]


def test_a_committed_chunk_resubmitted_writes_nothing(services: Services, tmp_path: Path) -> None:
    _stolen_catalogue(services, tmp_path)
    photo = jpeg_bytes(photographed(textured_object(1), seed=5))
    sha = hashlib.sha256(photo).hexdigest()
    tasks = [
        ListingTask(
            index=i,
            details=ListingDetails(source="venue", listing_id=f"L{i}", image_sha256=sha),
            image="p.jpg",
            data=photo,
            record={"source": "venue", "listing_id": f"L{i}", "image": "p.jpg"},
        )
        for i in range(3)
    ]
    outcomes = compute_chunk(services, tasks)
    first = commit_chunk(services, outcomes)
    assert (first.checked, first.skipped, first.hits, len(first.new_alerts)) == (3, 0, 3, 3)
    rows = _check_rows(services)
    # A worker died after computing it: the chunk comes back again, computed anew.
    again = commit_chunk(services, compute_chunk(services, tasks))
    assert (again.checked, again.skipped, again.hits, again.new_alerts) == (0, 3, 0, [])
    assert _check_rows(services) == rows and len(rows) == 3


def test_small_runs_stay_in_process(services: Services, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ingest.batch.cluster as cluster

    def no_cluster(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was started for a small run")

    monkeypatch.setattr(cluster, "open_cluster", no_cluster)
    manifest = _listings(tmp_path / "a", 3)
    assert services.settings.batch.scheduler == "local"
    run = check_listings(services, manifest)
    assert run.checked == 3


# -- a real Dask LocalCluster ------------------------------------------------------------------


@pytest.mark.integration
def test_local_cluster_gives_the_in_process_result(services: Services, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    from ingest.batch.cluster import DaskMapper

    _stolen_catalogue(services, tmp_path)
    manifest = _listings(tmp_path / "a", 12, broken=[7])
    services.settings = services.settings.model_copy(
        update={"batch": services.settings.batch.model_copy(update={"chunk_size": 3})}
    )
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        run = check_listings(services, manifest, mapper=DaskMapper(client, services.settings))
        # Each worker built its services once, for all its chunks.
        built = client.run(
            lambda dask_worker: dask_worker.plugins["artmatch-services"].services is not None
        )
    assert list(built.values()) == [True, True]
    assert (run.checked, run.hits, len(run.errors)) == (11, 4, 2)
    on_cluster = _report(services, run, tmp_path / "cluster")
    (tmp_path / "a" / "m.jsonl").rename(tmp_path / "a" / "n.jsonl")
    plain = check_listings(services, tmp_path / "a" / "n.jsonl", scheduler="none")
    assert (plain.checked, plain.hits, plain.errors) == (run.checked, run.hits, run.errors)
    assert _report(services, plain, tmp_path / "plain")["hits"] == on_cluster["hits"]


def _count_checks(database: Path) -> tuple[int, int]:
    """(rows, distinct listings) in listing_checks, read without the app's code."""
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(ListingCheck)) or 0
        distinct = conn.scalar(
            select(func.count()).select_from(
                select(ListingCheck.source, ListingCheck.listing_id).distinct().subquery()
            )
        )
    engine.dispose()
    return rows, distinct or 0


@pytest.mark.integration
def test_a_run_killed_with_sigkill_resumes_with_nothing_lost_or_repeated(
    services: Services, tmp_path: Path
) -> None:
    _stolen_catalogue(services, tmp_path)
    n = 40
    manifest = _listings(tmp_path / "a", n, gone=False)
    env = os.environ | {
        "ARTMATCH_HOME": str(services.settings.home),
        "ARTMATCH_EMBEDDER__NAME": "fake",
        "ARTMATCH_BATCH__WORKERS": "1",
        "ARTMATCH_BATCH__CHUNK_SIZE": "2",
        "ARTMATCH_BATCH__MIN_LISTINGS": "0",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-c", "from cli.main import main; main()", "check-listings"]
    database = services.settings.home / "catalogue.sqlite3"
    first = subprocess.Popen(
        [*command, str(manifest), "--scheduler", "local"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: the cluster it started is cleaned up after the test.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _count_checks(database)[0] < 4:
            assert first.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run checked nothing in 2 minutes"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)  # its orphaned cluster processes
    rows, _ = _count_checks(database)
    assert 4 <= rows < n, "the kill did not land mid-run"

    second = subprocess.run(
        [*command, str(manifest), "--scheduler", "local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{n - rows} checked now, {rows} already checked" in second.stdout
    assert _count_checks(database) == (n, n)


@pytest.mark.parametrize("value", ["cluster", "tcp://", "http://host:8786", "tcp://a b"])
def test_check_listings_refuses_a_bad_scheduler_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    from tests.test_cli_words import _home, _main, _manifest, _one_line_error

    home, manifest = _home(tmp_path), _manifest(tmp_path)
    args = ["--home", str(home), "check-listings", str(manifest), "--scheduler", value]
    code, output = _main(monkeypatch, capsys, *args)
    assert code != 0
    _one_line_error(output, "--scheduler", "tcp://host:8786")
    assert "Checking listings" not in output


@pytest.mark.integration
def test_a_worker_killed_mid_run_loses_and_repeats_nothing(
    services: Services, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    from ingest.batch.cluster import DaskMapper

    _stolen_catalogue(services, tmp_path)
    n = 16
    manifest = _listings(tmp_path / "a", n, gone=False)
    services.settings = services.settings.model_copy(
        update={"batch": services.settings.batch.model_copy(update={"chunk_size": 2})}
    )
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        mapper = DaskMapper(client, services.settings)
        real_map = mapper.map

        def killing(chunks):  # type: ignore[no-untyped-def]
            for i, outcomes in enumerate(real_map(chunks)):
                if i == 0:
                    # SIGKILL one worker while its chunks are in flight; its nanny restarts it
                    # (the plugin builds its services again) and the scheduler resubmits them.
                    pids = client.run(os.getpid)
                    os.kill(sorted(pids.values())[0], signal.SIGKILL)
                yield outcomes

        mapper.map = killing  # type: ignore[method-assign]
        run = check_listings(services, manifest, mapper=mapper)
    assert (run.total, run.checked + run.skipped, run.errors) == (n, n, [])
    rows = _check_rows(services)
    assert len(rows) == len(set(rows)) == n
