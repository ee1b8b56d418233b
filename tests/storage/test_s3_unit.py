"""S3 blob store checks that need no server: settings, key rules, retry policy, error mapping."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from kernel.errors import ConfigError, StorageError
from kernel.settings import Settings, StorageSettings
from storage.blobs import available_blob_stores, create_blob_store
from storage.s3 import S3BlobStore, make_http_client

_CREDENTIAL_VARS = ("ARTMATCH_STORAGE__S3_ACCESS_KEY", "ARTMATCH_STORAGE__S3_SECRET_KEY")


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic-settings merges the environment into nested groups, so a developer's exported
    # keys would otherwise fill the gaps these tests leave on purpose.
    for name in (*_CREDENTIAL_VARS, "ARTMATCH_STORAGE__S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def _settings(**storage: object) -> Settings:
    return Settings(_env_file=None, storage=StorageSettings(backend="s3", **storage))  # type: ignore[call-arg, arg-type]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_credentials_name_both_variables() -> None:
    with pytest.raises(ConfigError) as info:
        create_blob_store(_settings(s3_endpoint="127.0.0.1:9000"))
    for name in _CREDENTIAL_VARS:
        assert name in str(info.value)


def test_missing_secret_names_only_the_secret() -> None:
    with pytest.raises(ConfigError, match="ARTMATCH_STORAGE__S3_SECRET_KEY") as info:
        create_blob_store(_settings(s3_endpoint="127.0.0.1:9000", s3_access_key=SecretStr("AK")))
    assert "S3_ACCESS_KEY" not in str(info.value)


def test_empty_credentials_count_as_missing() -> None:
    with pytest.raises(ConfigError, match="S3_ACCESS_KEY"):
        create_blob_store(
            _settings(
                s3_endpoint="127.0.0.1:9000",
                s3_access_key=SecretStr(""),
                s3_secret_key=SecretStr("secret"),
            )
        )


def test_missing_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ARTMATCH_STORAGE__S3_ENDPOINT"):
        create_blob_store(_settings(s3_access_key=SecretStr("a"), s3_secret_key=SecretStr("b")))


def test_s3_is_registered() -> None:
    assert "s3" in available_blob_stores()


def test_invalid_key_is_refused_before_any_request() -> None:
    store = S3BlobStore(
        endpoint=f"127.0.0.1:{_closed_port()}",
        bucket="artmatch",
        access_key="a",
        secret_key="b",
        secure=False,
        create_bucket=False,
    )
    with pytest.raises(StorageError, match="invalid blob key"):
        store.put("../etc/passwd", b"x")


def test_unreachable_endpoint_is_a_storage_error_after_retries() -> None:
    port = _closed_port()
    with pytest.raises(StorageError, match=rf"127\.0\.0\.1:{port} unreachable"):
        S3BlobStore(
            endpoint=f"127.0.0.1:{port}",
            bucket="artmatch",
            access_key="a",
            secret_key="b",
            secure=False,
            http_client=make_http_client(retries=2, backoff_factor=0),
        )


def test_retry_policy_covers_transient_failures() -> None:
    retry = make_http_client().connection_pool_kw["retries"]
    assert retry.total >= 3
    assert retry.backoff_factor > 0
    assert {500, 502, 503, 504} <= set(retry.status_forcelist)
    # Multipart uploads start and finish with POST; those must be retried too.
    assert {"GET", "PUT", "HEAD", "DELETE", "POST"} <= set(retry.allowed_methods)
