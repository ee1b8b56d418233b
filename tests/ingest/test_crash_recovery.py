"""Crash recovery on the production backends (S3 via Ceph RGW, PostgreSQL; integration).

A bulk import is killed with SIGKILL halfway through, run again to completion, and
`artmatch fsck` must then find a consistent store with every photo present exactly once: as a
row, as a photo blob, as a thumbnail, as a vector. The commands run as real subprocesses with
the settings a deployment would use (ARTMATCH_STORAGE__* variables).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from storage.catalogue import Embedding, Photo
from tests.utils.catalogue import write_catalogue
from tests.utils.servers import S3Server, find_postgres, find_s3, postgres_schema, s3_bucket

pytestmark = pytest.mark.integration

N_PHOTOS = 40
KILL_AFTER_ROWS = 8


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[dict[str, str], S3Server, str, str]]:
    server = find_s3()
    pg = find_postgres()
    with postgres_schema(pg) as db_url, s3_bucket(server) as bucket:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTMATCH_")}
        env.update(
            ARTMATCH_HOME=str(tmp_path / "replica-1"),
            ARTMATCH_EMBEDDER__NAME="fake",
            # One photo per batch: many small commits, so the kill lands mid-import.
            ARTMATCH_EMBEDDER__BATCH_SIZE="1",
            ARTMATCH_STORAGE__BACKEND="s3",
            ARTMATCH_STORAGE__S3_ENDPOINT=server.endpoint,
            ARTMATCH_STORAGE__S3_ACCESS_KEY=server.access_key,
            ARTMATCH_STORAGE__S3_SECRET_KEY=server.secret_key,
            ARTMATCH_STORAGE__S3_SECURE="false",
            ARTMATCH_STORAGE__S3_BUCKET=bucket,
            ARTMATCH_STORAGE__DATABASE_URL=db_url,
        )
        yield env, server, bucket, db_url


def _artmatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _count(engine, column) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return int(session.scalar(select(func.count(column))) or 0)


def test_killed_import_then_rerun_then_fsck(
    deployment: tuple[dict[str, str], S3Server, str, str], tmp_path: Path
) -> None:
    env, server, bucket, db_url = deployment
    csv_path = write_catalogue(tmp_path / "cat", n_objects=N_PHOTOS)

    # An unmigrated server database is refused, naming the command.
    refused = _artmatch(env, "import-catalogue", str(csv_path))
    assert refused.returncode == 2 and "artmatch db upgrade" in refused.stderr, refused.stderr
    migrated = _artmatch(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr

    engine = create_engine(db_url)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", "import-catalogue"]
            + [str(csv_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        rows_at_kill = 0
        while time.monotonic() < deadline and proc.poll() is None:
            rows_at_kill = _count(engine, Photo.id)
            if rows_at_kill >= KILL_AFTER_ROWS:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the import ended before it could be killed"
        assert KILL_AFTER_ROWS <= rows_at_kill < N_PHOTOS

        rerun = _artmatch(env, "import-catalogue", str(csv_path))
        assert rerun.returncode == 0, rerun.stderr
        assert "duplicate(s)" in rerun.stdout

        # A crash between blob and row, of a photo nobody imports again: an orphan.
        store = Minio(
            server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            secure=False,
        )
        orphan = "photos/ff/" + "f" * 64
        store.put_object(bucket, orphan, io.BytesIO(b"orphan"), 6)

        check = _artmatch(env, "fsck")
        assert check.returncode == 0 and "recent orphan" in check.stdout, check.stdout
        repair = _artmatch(env, "fsck", "--repair", "--grace-minutes", "0")
        assert repair.returncode == 0, repair.stdout + repair.stderr
        assert orphan in repair.stdout and "removed 1 orphan blob(s)" in repair.stdout
        final = _artmatch(env, "fsck", "--grace-minutes", "0")
        assert final.returncode == 0 and final.stdout.rstrip().endswith("consistent")

        # Every photo exactly once: rows, distinct contents, blobs, thumbnails, vectors.
        assert _count(engine, Photo.id) == N_PHOTOS
        assert _count(engine, func.distinct(Photo.sha256)) == N_PHOTOS
        assert _count(engine, Embedding.id) == N_PHOTOS
        keys = [o.object_name for o in store.list_objects(bucket, recursive=True)]
        photos = [k for k in keys if k.startswith("photos/")]
        thumbs = [k for k in keys if k.startswith("thumbnails/")]
        assert len(photos) == len(set(photos)) == N_PHOTOS
        assert len(thumbs) == N_PHOTOS
        with Session(engine) as session:
            assert set(session.scalars(select(Photo.blob_key))) == set(photos)
    finally:
        engine.dispose()

    # A second replica, with no index of its own, loads the snapshot instead of rebuilding.
    replica = {**env, "ARTMATCH_HOME": str(tmp_path / "replica-2")}
    check = _artmatch(replica, "fsck", "--grace-minutes", "0")
    assert check.returncode == 0 and "index: snapshot" in check.stdout, check.stdout
