"""S3 blob store: photos and thumbnails in an S3-compatible bucket (Ceph RGW, MinIO, AWS).

Registered as ``"s3"``; `storage.blobs.create_blob_store` imports this module when the settings
ask for it. Large blobs stream both ways: uploads go up in multipart parts of ``part_size``
bytes, downloads come back through `open` a buffer at a time, so a 200 MB photo never sits in
memory whole. Transient failures (dropped connections, 5xx) are retried with exponential
backoff by urllib3 underneath the minio client; what still fails becomes a `StorageError`
whose message names the bucket and endpoint.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3Error

from kernel.errors import ConfigError, NotFound, StorageError
from storage.blobs import BlobStore, _check_key, register_blob_store

if TYPE_CHECKING:
    from kernel.settings import Settings

__all__ = ["DEFAULT_PART_SIZE", "S3BlobStore", "make_http_client"]

#: Multipart part size. S3 wants at least 5 MiB per part; 8 MiB keeps the peak memory of an
#: upload near (parallel uploads + 1) x 8 MiB whatever the blob's size.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: Parts in flight at once; minio blocks the reader while all of them are busy, which is what
#: bounds memory, so more threads means more memory.
_PARALLEL_UPLOADS = 2
_READ_CHUNK = 1024 * 1024

# S3 codes that mean "these credentials are wrong", as opposed to "not allowed to do this".
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "NoSuchObject"})


def make_http_client(
    *,
    retries: int = 5,
    backoff_factor: float = 0.2,
    connect_timeout_s: float = 10.0,
    read_timeout_s: float = 120.0,
) -> urllib3.PoolManager:
    """The connection pool under the minio client, with our retry policy.

    Connection errors, read errors and 500/502/503/504 are retried ``retries`` times, sleeping
    ``backoff_factor * 2**n`` seconds between tries. POST is retried too: S3 uses it only to
    start and complete multipart uploads, and both are safe to repeat.
    """
    retry = urllib3.Retry(
        total=retries,
        backoff_factor=backoff_factor,
        status_forcelist=[500, 502, 503, 504],
        allowed_methods=urllib3.Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
        # Hand the last error response to minio so it can decode the S3 error body.
        raise_on_status=False,
    )
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        # Room for the parallel GETs of a batch of local features (storage.features).
        maxsize=max(_PARALLEL_UPLOADS + 2, 16),
        retries=retry,
    )


class _ResponseStream(io.RawIOBase):
    """A raw stream over an S3 GET response that gives the connection back when closed."""

    def __init__(self, response: urllib3.BaseHTTPResponse, *, describe: str) -> None:
        self._response = response
        self._describe = describe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._response.read(len(buffer))
        except Urllib3Error as exc:
            # Mid-body failures cannot be retried transparently: the caller has bytes already.
            raise StorageError(
                f"lost the connection while reading {self._describe}: {exc}"
            ) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


class S3BlobStore:
    """Blobs as objects in one S3 bucket, the bucket created if missing."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool = True,
        region: str | None = None,
        url_expiry_s: int = 3600,
        part_size: int = DEFAULT_PART_SIZE,
        http_client: urllib3.PoolManager | None = None,
        create_bucket: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.url_expiry = timedelta(seconds=url_expiry_s)
        self.part_size = part_size
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http_client or make_http_client(),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid S3 endpoint {endpoint!r}: {exc}") from None
        if create_bucket:
            self._ensure_bucket()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        s = settings.storage
        missing = [
            f"ARTMATCH_STORAGE__{name.upper()}"
            for name in ("s3_access_key", "s3_secret_key")
            if not (value := getattr(s, name)) or not value.get_secret_value()
        ]
        if missing:
            # No fallback credentials on purpose: a store that silently talks to a bucket as
            # somebody else is worse than one that refuses to start.
            raise ConfigError(
                f"the s3 storage backend needs credentials: set {' and '.join(missing)}"
            )
        if not s.s3_endpoint:
            raise ConfigError(
                "the s3 storage backend needs ARTMATCH_STORAGE__S3_ENDPOINT (host:port)"
            )
        assert s.s3_access_key is not None and s.s3_secret_key is not None
        return cls(
            endpoint=s.s3_endpoint,
            bucket=s.s3_bucket,
            access_key=s.s3_access_key.get_secret_value(),
            secret_key=s.s3_secret_key.get_secret_value(),
            secure=s.s3_secure,
            region=s.s3_region,
            url_expiry_s=s.s3_url_expiry_s,
        )

    def _ensure_bucket(self) -> None:
        try:
            if self._client.bucket_exists(self.bucket):
                return
            self._client.make_bucket(self.bucket)
        except S3Error as exc:
            # Another process created it between our check and our create: that is fine.
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                self._fail(exc, action="create")
        except ValueError as exc:
            raise ConfigError(f"invalid S3 bucket name {self.bucket!r}: {exc}") from None
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="create")

    def _fail(self, exc: Exception, *, action: str, key: str | None = None) -> NoReturn:
        where = f"bucket {self.bucket} at endpoint {self.endpoint}"
        target = f"{key} in {where}" if key else where
        if isinstance(exc, S3Error):
            if exc.code in _MISSING_KEY_CODES and key is not None:
                raise NotFound(f"blob {key} does not exist") from None
            if exc.code in _CREDENTIAL_CODES:
                raise StorageError(f"S3 refused the credentials for {where} ({exc.code})") from exc
            if exc.code == "AccessDenied":
                raise StorageError(f"S3 denied access: cannot {action} {target}") from exc
            if exc.code == "NoSuchBucket":
                raise StorageError(f"S3 {where}: the bucket does not exist") from exc
            raise StorageError(f"S3 cannot {action} {target} ({exc.code}: {exc.message})") from exc
        if isinstance(exc, ServerError):
            raise StorageError(
                f"S3 cannot {action} {target}: server error {exc.status_code}, still failing "
                "after retries"
            ) from exc
        if isinstance(exc, InvalidResponseError):
            raise StorageError(
                f"S3 cannot {action} {target}: the endpoint does not answer like S3"
            ) from exc
        if isinstance(exc, urllib3.exceptions.MaxRetryError):
            raise StorageError(
                f"S3 endpoint {self.endpoint} unreachable, still failing after retries: "
                f"cannot {action} {target} ({exc.reason})"
            ) from exc
        raise StorageError(f"S3 cannot {action} {target}: {exc}") from exc

    def put(
        self, key: str, data: bytes | BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> None:
        _check_key(key)
        if isinstance(data, bytes | bytearray | memoryview):
            buffer = io.BytesIO(data)
            stream: BinaryIO = buffer
            length = buffer.getbuffer().nbytes
        else:
            # Unknown length: minio reads part_size at a time and goes multipart past one part,
            # so memory stays bounded whatever the stream holds. S3 makes the object visible
            # only when the last part completes, which gives the atomicity the protocol wants.
            stream, length = data, -1
        try:
            self._client.put_object(
                self.bucket,
                key,
                stream,
                length,
                content_type=content_type,
                part_size=self.part_size,
                num_parallel_uploads=_PARALLEL_UPLOADS,
            )
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="write blob", key=key)

    def open(self, key: str) -> BinaryIO:
        _check_key(key)
        try:
            response = self._client.get_object(self.bucket, key)
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="read blob", key=key)
        raw = _ResponseStream(response, describe=f"blob {key} from bucket {self.bucket}")
        return io.BufferedReader(raw, buffer_size=_READ_CHUNK)  # type: ignore[return-value]

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        _check_key(key)
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_KEY_CODES:
                return False
            self._fail(exc, action="look up blob", key=key)
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="look up blob", key=key)
        return True

    def delete(self, key: str) -> None:
        _check_key(key)
        try:
            # S3 answers 204 for a missing key too, which is the protocol's contract.
            self._client.remove_object(self.bucket, key)
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="delete blob", key=key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        try:
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name is not None and not obj.is_dir:
                    yield obj.object_name
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="list keys of")

    def url(self, key: str) -> str:
        _check_key(key)
        try:
            return self._client.presigned_get_object(self.bucket, key, expires=self.url_expiry)
        except (MinioException, Urllib3Error) as exc:
            self._fail(exc, action="sign a URL for blob", key=key)


@register_blob_store("s3")
def _s3(settings: Settings) -> BlobStore:
    return S3BlobStore.from_settings(settings)
