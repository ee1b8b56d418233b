"""Accounts: login throttling and the cap on password checks at once, a new password ending
sessions and tokens, and the Admin page's account changes (with CSRF)."""

from __future__ import annotations

import threading
import time

import pytest

from service.security import LoginGuard, LoginRefused
from tests.service.conftest import PASSWORD, Api

HTML = {"Accept": "text/html"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_guard_backs_off_exponentially_per_name_and_address() -> None:
    clock = Clock()
    guard = LoginGuard(max_failures=3, max_address_failures=5, base_delay=10, clock=clock)
    for _ in range(2):
        guard.failed(username="Bob", address="10.0.0.1")
    guard.check(username="bob", address="10.0.0.1")  # two failures: still free
    guard.failed(username="bob ", address="10.0.0.1")
    with pytest.raises(LoginRefused) as info:
        guard.check(username="BOB", address="10.0.0.9")  # the name is locked, any address
    assert info.value.retry_after == 10
    guard.check(username="alice", address="10.0.0.9")  # other names are not
    clock.now += 10
    guard.check(username="bob", address="10.0.0.9")
    guard.failed(username="bob", address="10.0.0.1")
    with pytest.raises(LoginRefused) as info:
        guard.check(username="bob", address=None)
    assert info.value.retry_after == 20  # doubled
    # The address reached its own limit (5) by now, whatever the name.
    guard.failed(username="carol", address="10.0.0.1")
    with pytest.raises(LoginRefused):
        guard.check(username="dave", address="10.0.0.1")
    clock.now += 10_000
    guard.succeeded(username="bob", address="10.0.0.1")
    guard.check(username="bob", address="10.0.0.1")


def test_guard_caps_its_memory_and_its_delay() -> None:
    clock = Clock()
    guard = LoginGuard(max_failures=1, base_delay=100, max_delay=300, max_tracked=50, clock=clock)
    for _ in range(10):
        guard.failed(username="x", address="a")
    with pytest.raises(LoginRefused) as info:
        guard.check(username="x", address="b")
    assert info.value.retry_after == 300
    for n in range(500):
        guard.failed(username=f"user{n}", address=f"addr{n}")
    assert len(guard._failures) <= 50


def test_guard_runs_at_most_n_password_checks_at_once() -> None:
    guard = LoginGuard(concurrent_checks=2, wait=5)
    running = [0]
    peak = [0]
    lock = threading.Lock()

    def check() -> None:
        with guard.password_check():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=check) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    # A check that cannot start in time is refused rather than queued for ever.
    busy = LoginGuard(concurrent_checks=1, wait=0.01)
    with busy.password_check(), pytest.raises(LoginRefused), busy.password_check():
        pass


def _login(api: Api, username: str, password: str, **headers: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        "/login",
        data={"username": username, "password": password},
        headers=headers,
        follow_redirects=False,
    )


def test_repeated_bad_logins_get_429_with_retry_after(api: Api) -> None:
    for _ in range(5):
        assert _login(api, "inv", "wrong password").status_code == 401
    r = _login(api, "inv", PASSWORD)  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json()["error"] == "too_many_attempts"
    page = _login(api, "inv", PASSWORD, **HTML)
    assert page.status_code == 429 and "Too many failed logins" in page.text
    assert page.headers["Retry-After"]
    # Another account from another address is not affected.
    guard = api.client.app.state.runtime.login_guard  # type: ignore[attr-defined]
    guard.check(username="analyst", address="192.0.2.1")


def test_a_new_password_revokes_sessions_and_tokens(api: Api) -> None:
    assert _login(api, "inv", PASSWORD).status_code == 303
    session = api.client.cookies.get("artmatch_session")
    assert api.client.get("/api/v1/me").status_code == 200
    accounts = api.as_("admin", "GET", "/api/v1/accounts").json()
    inv = next(a for a in accounts if a["username"] == "inv")
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{inv['id']}", json={"password": "x" * 12})
    assert r.status_code == 200, r.text
    assert api.as_("inv", "GET", "/api/v1/me").status_code == 401
    # The browser still sends the old session cookie: it no longer opens anything.
    assert api.client.cookies.get("artmatch_session") == session
    assert api.client.get("/api/v1/me").status_code == 401
    assert _login(api, "inv", "x" * 12).status_code == 303


def test_changing_ones_own_password(api: Api) -> None:
    r = api.as_(
        "analyst",
        "POST",
        "/api/v1/me/password",
        json={"current_password": "wrong", "new_password": "new password 1"},
    )
    assert r.status_code == 422 and "current password" in r.json()["message"]
    r = api.as_(
        "analyst",
        "POST",
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "new password 1"},
    )
    assert r.status_code == 200, r.text
    assert api.as_("analyst", "GET", "/api/v1/me").status_code == 401  # the token is gone
    assert _login(api, "analyst", "new password 1").status_code == 303
    chain = api.as_("auditor", "GET", "/api/v1/audit", params={"action": "password_change"})
    assert [e["actor"] for e in chain.json()["items"]] == ["analyst"]


def _admin_session(api: Api) -> str:
    assert _login(api, "admin", PASSWORD).status_code == 303
    page = api.client.get("/admin", headers=HTML).text
    return page.split('name="csrf-token" content="')[1].split('"')[0]


def _account_id(api: Api, username: str) -> int:
    accounts = api.as_("admin", "GET", "/api/v1/accounts").json()
    return int(next(a["id"] for a in accounts if a["username"] == username))


def test_admin_page_disables_enables_changes_role_and_resets_password(api: Api) -> None:
    csrf = _admin_session(api)
    inv = _account_id(api, "inv")
    url = f"/admin/accounts/{inv}"
    page = api.client.get("/admin", headers=HTML).text
    assert f'action="{url}"' in page and "Reset password" in page

    # Without the CSRF token nothing changes.
    r = api.client.post(url, data={"change": "disable"}, headers=HTML)
    assert r.status_code == 403
    assert api.as_("inv", "GET", "/api/v1/me").status_code == 200

    def post(**data: str):  # type: ignore[no-untyped-def]
        return api.client.post(
            url, data={"csrf_token": csrf, **data}, headers=HTML, follow_redirects=False
        )

    r = post(change="disable")
    assert r.status_code == 303 and r.headers["location"].startswith("/admin?notice=")
    assert api.as_("inv", "GET", "/api/v1/me").status_code == 401  # token revoked
    assert _login(api, "inv", PASSWORD).status_code == 401
    csrf = _admin_session(api)
    assert "disabled" in api.client.get(r.headers["location"], headers=HTML).text

    r = post(change="enable", csrf_token=csrf)
    assert r.status_code == 303
    r = post(change="role", role="analyst", csrf_token=csrf)
    assert r.status_code == 303
    r = post(change="role", role="registrar", csrf_token=csrf)
    assert r.status_code == 422 and "needs an institution" in r.text
    r = post(change="password", password="short", csrf_token=csrf)
    assert r.status_code == 422 and "10 characters" in r.text
    r = post(change="password", password="a brand new pw", csrf_token=csrf)
    assert r.status_code == 303
    api.client.cookies.clear()
    assert _login(api, "inv", "a brand new pw").status_code == 303
    me = api.client.get("/api/v1/me").json()
    assert me["role"] == "analyst" and me["active"]

    actions = [
        e["action"]
        for e in api.as_("auditor", "GET", "/api/v1/audit").json()["items"]
        if e["subject"] == "account inv"
    ]
    assert actions == ["password_reset", "account_update", "account_update", "account_update"]


def test_admin_cannot_lock_themselves_out_on_the_page(api: Api) -> None:
    csrf = _admin_session(api)
    r = api.client.post(
        f"/admin/accounts/{_account_id(api, 'admin')}",
        data={"csrf_token": csrf, "change": "disable"},
        headers=HTML,
    )
    assert r.status_code == 422 and "lock themselves out" in r.text


def test_an_unknown_institution_is_created_for_an_account_only_when_asked(api: Api) -> None:
    new = {"username": "reg_new", "password": PASSWORD, "role": "registrar"}
    r = api.as_("admin", "POST", "/api/v1/accounts", json=new | {"institution": "Musuem A"})
    assert r.status_code == 409 and "does not exist yet" in r.json()["message"]
    names = {i["name"] for i in api.as_("admin", "GET", "/api/v1/institutions").json()}
    assert "Musuem A" not in names
    r = api.as_(
        "admin",
        "POST",
        "/api/v1/accounts",
        json=new | {"institution": "Musuem A", "create_institution": True},
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{account_id}", json={"institution": "X"})
    assert r.status_code == 409
    known = sorted(names)[0]
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{account_id}", json={"institution": known})
    assert r.status_code == 200 and r.json()["institution"] == known
