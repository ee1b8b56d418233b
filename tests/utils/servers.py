"""Finding the integration test servers: PostgreSQL (scripts/start-postgres.sh) and S3 (Ceph RGW,
scripts/start-s3.sh).

Each is found through its ARTMATCH_TEST_* variables, or the env file its start script writes.
Without a server the tests that need it skip, except under CI (CI set), where a missing server
is a failure: there the servers are part of the run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "S3Server",
    "find_postgres",
    "find_s3",
    "postgres_schema",
    "s3_bucket",
    "unavailable",
]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.endpoint.rsplit(":", 1)
        return host, int(port)


def unavailable(what: str, reason: str, start: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} test server unavailable under CI: {reason}")
    pytest.skip(f"{what} test server unavailable ({reason}); start it with {start}")


def _env_file(variable: str, default: str) -> dict[str, str]:
    path = Path(os.environ.get(variable, default)) / "env"
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def find_postgres() -> str:
    """The URL of the test database, or skip (fail under CI)."""
    values = {**_env_file("ARTMATCH_TEST_PG_DIR", "/tmp/artmatch-pg"), **os.environ}
    url = values.get("ARTMATCH_TEST_DATABASE_URL")
    if not url:
        unavailable(
            "PostgreSQL",
            "ARTMATCH_TEST_DATABASE_URL not set and no env file",
            "scripts/start-postgres.sh",
        )
        raise AssertionError("unreachable")
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        unavailable(
            "PostgreSQL", f"cannot connect: {exc.__class__.__name__}", "scripts/start-postgres.sh"
        )
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema, dropped afterwards.

    One schema per test keeps tests apart on the one test database without needing the
    right to create databases; the schema is first on the search path, so tables, types and
    Alembic's version table all land in it.
    """
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def find_s3() -> S3Server:
    values = {**_env_file("ARTMATCH_TEST_S3_DIR", "/tmp/artmatch-s3"), **os.environ}
    try:
        server = S3Server(
            endpoint=values["ARTMATCH_TEST_S3_ENDPOINT"],
            access_key=values["ARTMATCH_TEST_S3_ACCESS_KEY"],
            secret_key=values["ARTMATCH_TEST_S3_SECRET_KEY"],
        )
    except KeyError as exc:
        unavailable("S3", f"{exc.args[0]} not set and no env file", "scripts/start-s3.sh")
        raise
    try:
        socket.create_connection(server.address, timeout=2).close()
    except OSError as exc:
        unavailable("S3", f"nothing answers at {server.endpoint}: {exc}", "scripts/start-s3.sh")
    return server


@contextlib.contextmanager
def s3_bucket(server: S3Server) -> Iterator[str]:
    """A unique bucket name, the bucket and its contents removed afterwards."""
    from minio import Minio

    name = f"artmatch-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        admin = Minio(
            server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            secure=False,
        )
        if admin.bucket_exists(name):
            for obj in admin.list_objects(name, recursive=True):
                admin.remove_object(name, obj.object_name)
            admin.remove_bucket(name)
