"""`S3BlobStore` against a real S3 server on loopback (Ceph RGW from scripts/start-s3.sh).

The server is found through ARTMATCH_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY, or the env
file start-s3.sh writes ($ARTMATCH_TEST_S3_DIR/env, default /tmp/artmatch-s3/env). Without a
server these tests skip, except under CI (CI set), where a missing server is a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import tracemalloc
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.errors import NotFound, StorageError
from storage.blobs import BlobStore
from storage.s3 import S3BlobStore, make_http_client
from tests.utils.servers import S3Server, find_s3, s3_bucket

pytestmark = pytest.mark.integration

_MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_server() -> S3Server:
    return find_s3()


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> Iterator[str]:
    with s3_bucket(s3_server) as name:
        yield name


def _store(server: S3Server, bucket: str, **overrides: object) -> S3BlobStore:
    options: dict[str, object] = {
        "endpoint": server.endpoint,
        "bucket": bucket,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "secure": False,
    }
    return S3BlobStore(**{**options, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def store(s3_server: S3Server, bucket: str) -> S3BlobStore:
    return _store(s3_server, bucket)


@pytest.fixture
def prefix() -> str:
    # One prefix per test: the bucket is shared by the module, the keys are not.
    return f"t-{uuid.uuid4().hex[:8]}"


def test_satisfies_the_protocol(store: S3BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_get_exists_delete(store: S3BlobStore, prefix: str) -> None:
    key = f"{prefix}/photos/ab/abcdef"
    assert not store.exists(key)
    store.put(key, b"jpeg bytes", content_type="image/jpeg")
    assert store.exists(key)
    assert store.get(key) == b"jpeg bytes"
    with store.open(key) as stream:
        assert stream.read() == b"jpeg bytes"
    store.put(key, b"replaced")
    assert store.get(key) == b"replaced"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting a missing key is not an error


def test_missing_key_is_not_found(store: S3BlobStore, prefix: str) -> None:
    with pytest.raises(NotFound, match=f"{prefix}/nothing"):
        store.get(f"{prefix}/nothing")
    with pytest.raises(NotFound):
        store.open(f"{prefix}/nothing")


def test_keys_lists_recursively_by_prefix(store: S3BlobStore, prefix: str) -> None:
    wanted = [f"{prefix}/photos/a/1", f"{prefix}/photos/b/2", f"{prefix}/thumbs/a/1"]
    for key in wanted:
        store.put(key, key.encode())
    assert sorted(store.keys(f"{prefix}/photos/")) == wanted[:2]
    assert sorted(store.keys(prefix)) == wanted
    assert list(store.keys(f"{prefix}/none/")) == []


def test_put_accepts_a_file_object(store: S3BlobStore, prefix: str, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8" + os.urandom(1000))
    with path.open("rb") as f:
        store.put(f"{prefix}/from-file", f)
    assert store.get(f"{prefix}/from-file") == path.read_bytes()


def test_presigned_url_serves_the_bytes(store: S3BlobStore, prefix: str) -> None:
    data = os.urandom(4096)
    store.put(f"{prefix}/shared", data)
    url = store.url(f"{prefix}/shared")
    assert url.startswith(f"http://{store.endpoint}/") and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data


def test_200_mb_streams_in_bounded_memory(store: S3BlobStore, prefix: str, tmp_path: Path) -> None:
    size = 200 * _MIB
    path = tmp_path / "big.bin"
    sent = hashlib.sha256()
    with path.open("wb") as f:
        block = os.urandom(_MIB)
        for i in range(size // _MIB):
            # A different block each MiB, so a part repeated or dropped changes the hash.
            chunk = i.to_bytes(8, "little") + block[8:]
            sent.update(chunk)
            f.write(chunk)
    key = f"{prefix}/big"

    tracemalloc.start()
    try:
        with path.open("rb") as f:
            store.put(key, f)
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        received = hashlib.sha256()
        total = 0
        with store.open(key) as stream:
            while chunk := stream.read(_MIB):
                received.update(chunk)
                total += len(chunk)
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert total == size
    assert received.hexdigest() == sent.hexdigest()
    # Parts of 8 MiB, two in flight plus the one being read: tens of MiB, never the file.
    assert upload_peak < 64 * _MIB, f"upload peaked at {upload_peak / _MIB:.0f} MiB"
    assert download_peak < 16 * _MIB, f"download peaked at {download_peak / _MIB:.0f} MiB"
    store.delete(key)


@pytest.mark.parametrize("which", ["access_key", "secret_key"])
def test_wrong_credentials_are_refused_clearly(
    s3_server: S3Server, bucket: str, which: str
) -> None:
    with pytest.raises(StorageError) as info:
        _store(s3_server, bucket, **{which: "WRONG" + "0" * 15})
    message = str(info.value)
    assert message.startswith(
        f"S3 refused the credentials for bucket {bucket} at endpoint {s3_server.endpoint} ("
    )
    assert ("InvalidAccessKeyId" if which == "access_key" else "SignatureDoesNotMatch") in message


class _DroppingProxy:
    """A TCP proxy on 127.0.0.1 that cuts its first ``drops`` connections, then forwards.

    A cut connection has its request read and is closed unanswered, which is what a load
    balancer restarting or a NAT timing out looks like to the client.
    """

    def __init__(self, upstream: tuple[str, int], *, drops: int) -> None:
        self.upstream = upstream
        self.drops = drops
        self.dropped = 0
        self.forwarded = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept_loop)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            if self.dropped < self.drops:
                self.dropped += 1
                client.recv(65536)
                client.close()
                continue
            self.forwarded += 1
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            self._spawn(self._pipe, client, server)
            self._spawn(self._pipe, server, client)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other direction closed the pair

    def close(self) -> None:
        self._stop.set()
        accept, *pipes = self._threads
        accept.join(timeout=5)
        self._listener.close()
        for sock in self._sockets:
            # shutdown, not close, is what wakes a thread blocked in recv on the socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in pipes:
            thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def dropping_proxy(s3_server: S3Server) -> Iterator[_DroppingProxy]:
    proxy = _DroppingProxy(s3_server.address, drops=1)
    yield proxy
    proxy.close()


def _store_via(
    proxy: _DroppingProxy, server: S3Server, bucket: str, *, retries: int
) -> S3BlobStore:
    return _store(
        server,
        bucket,
        endpoint=f"127.0.0.1:{proxy.port}",
        # A known region and no bucket check: the first request through the proxy is the put.
        region="us-east-1",
        create_bucket=False,
        http_client=make_http_client(retries=retries, backoff_factor=0.01),
    )


def test_a_dropped_connection_is_retried(
    s3_server: S3Server,
    bucket: str,
    store: S3BlobStore,
    prefix: str,
    dropping_proxy: _DroppingProxy,
) -> None:
    flaky = _store_via(dropping_proxy, s3_server, bucket, retries=3)
    flaky.put(f"{prefix}/retried", b"survived a drop")
    assert dropping_proxy.dropped == 1
    assert dropping_proxy.forwarded >= 1
    assert store.get(f"{prefix}/retried") == b"survived a drop"
    assert flaky.get(f"{prefix}/retried") == b"survived a drop"


def test_drops_beyond_the_retries_become_a_storage_error(
    s3_server: S3Server, bucket: str, prefix: str, dropping_proxy: _DroppingProxy
) -> None:
    dropping_proxy.drops = 10
    flaky = _store_via(dropping_proxy, s3_server, bucket, retries=2)
    with pytest.raises(StorageError, match="still failing after retries"):
        flaky.put(f"{prefix}/lost", b"x")
    assert dropping_proxy.dropped == 3  # the first try and two retries
