"""An app with the fake embedder, accounts of every role and their API tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from kernel.enums import Role
from kernel.settings import Settings, WebSettings
from models.embedders import FakeEmbedder
from service.main import create_app
from service.security import hash_password, new_token

PASSWORD = "correct horse battery"
_HASHES: dict[str, str] = {}


def password_hash() -> str:
    # argon2 is slow on purpose; hash once per test session.
    if PASSWORD not in _HASHES:
        _HASHES[PASSWORD] = hash_password(PASSWORD)
    return _HASHES[PASSWORD]


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def as_(self, who: str, method: str, url: str, **kwargs):  # type: ignore[no-untyped-def]
        headers = self.headers(who) | kwargs.pop("headers", {})
        return self.client.request(method, url, headers=headers, **kwargs)


#: Accounts created for every test: name -> (role, institution).
ACCOUNTS = {
    "admin": (Role.ADMIN, None),
    "reg_a": (Role.REGISTRAR, "Museum A"),
    "reg_b": (Role.REGISTRAR, "Museum B"),
    "inv": (Role.INVESTIGATOR, None),
    "analyst": (Role.ANALYST, None),
    "auditor": (Role.AUDITOR, None),
}


def wait_ready(client: TestClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/api/v1/ready").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("service never became ready")


@pytest.fixture
def web_settings() -> WebSettings:
    return WebSettings(max_request_bytes=3 * 1024 * 1024)


@pytest.fixture
def api(settings: Settings, web_settings: WebSettings) -> Iterator[Api]:
    settings = settings.model_copy(update={"max_upload_bytes": 2 * 1024 * 1024})
    app = create_app(settings, web=web_settings, embedder=FakeEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        accounts = app.state.runtime.accounts
        tokens = {}
        for name, (role, institution) in ACCOUNTS.items():
            account = accounts.create_account(
                username=name,
                password_hash=password_hash(),
                role=role,
                institution=institution,
            )
            token, digest = new_token()
            accounts.add_token(account_id=account.id, name="test", token_sha256=digest)
            tokens[name] = token
        yield Api(client, tokens)
