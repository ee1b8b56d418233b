"""Passwords (argon2id via argon2-cffi), bearer tokens, the CSRF token of a browser session,
and the guard on logins (`LoginGuard`: throttling and a cap on password checks at once).

Tokens are random; only their SHA-256 is stored, so a database leak gives no usable token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.responses import JSONResponse

__all__ = [
    "LoginGuard",
    "LoginRefused",
    "csrf_for",
    "csrf_matches",
    "hash_password",
    "new_token",
    "prepare_password_checks",
    "token_sha256",
    "too_many_attempts",
    "verify_password",
]

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so timing does not reveal which names
    exist. Hashed once, on first use (argon2 is slow on purpose: not at import)."""
    return _hasher.hash("not a password of anyone")


def prepare_password_checks() -> None:
    """Compute the dummy hash now (the app's start-up calls this off the event loop), so that
    even the first login with an unknown name takes as long as one with a known name."""
    _dummy_hash()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str = "am") -> tuple[str, str]:
    """(token to hand out once, its SHA-256 to store)."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, token_sha256(token)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    # Derived from the session cookie: a cross-site page cannot read the cookie, so it cannot
    # compute this value, and nothing extra needs storing.
    return hashlib.sha256(b"csrf:" + session_token.encode()).hexdigest()[:40]


def csrf_matches(session_token: str, candidate: str | None) -> bool:
    return bool(candidate) and hmac.compare_digest(csrf_for(session_token), candidate or "")


class LoginRefused(Exception):
    """A login refused before its password was checked: too many failures, or too many
    password checks at once. ``retry_after``: whole seconds to wait (for Retry-After)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginGuard:
    """Throttles logins per user name and per client address, and bounds the password checks
    running at once.

    After ``max_failures`` failed logins in a row for a name (``max_address_failures`` for an
    address), each further attempt is refused without checking the password for
    ``base_delay * 2**(failures - max_failures)`` seconds, at most ``max_delay``; a success
    clears the name's and the address's count. argon2 takes 64 MiB per check by design, so at
    most ``concurrent_checks`` run at once; a login that cannot start one within ``wait``
    seconds is refused. State is per process and kept for at most ``max_tracked`` names and
    addresses (the oldest are forgotten first), so a flood of names cannot grow memory.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_address_failures: int = 20,
        base_delay: float = 30.0,
        max_delay: float = 900.0,
        concurrent_checks: int = 2,
        wait: float = 10.0,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.wait = wait
        self.max_tracked = max_tracked
        self._clock = clock
        self._checks = threading.BoundedSemaphore(concurrent_checks)
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
        return [(f"user:{username.strip().casefold()}", 0), (f"addr:{address or '?'}", 1)]

    def _limit(self, kind: int) -> int:
        return self.max_failures if kind == 0 else self.max_address_failures

    def check(self, *, username: str, address: str | None) -> None:
        """Raise `LoginRefused` while the name or the address is locked."""
        now = self._clock()
        with self._lock:
            waits = [
                f.locked_until - now
                for key, _ in self._keys(username, address)
                if (f := self._failures.get(key)) is not None
            ]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise LoginRefused(
                "too many failed logins: try again later", retry_after=math.ceil(wait)
            )

    def failed(self, *, username: str, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            for key, kind in self._keys(username, address):
                f = self._failures.pop(key, None) or _Failures()
                f.count += 1
                over = f.count - self._limit(kind)
                if over >= 0:
                    f.locked_until = now + min(self.max_delay, self.base_delay * 2.0**over)
                self._failures[key] = f  # newest last
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)

    def succeeded(self, *, username: str, address: str | None) -> None:
        with self._lock:
            for key, _ in self._keys(username, address):
                self._failures.pop(key, None)

    @contextmanager
    def password_check(self) -> Iterator[None]:
        """Hold one of the ``concurrent_checks`` slots for a password check."""
        if not self._checks.acquire(timeout=self.wait):
            raise LoginRefused("too many logins at once: try again in a moment", retry_after=1)
        try:
            yield
        finally:
            self._checks.release()


def too_many_attempts(exc: LoginRefused) -> JSONResponse:
    """429 with the error body every other error has, and when to try again."""
    return JSONResponse(
        {"error": "too_many_attempts", "message": str(exc), "detail": None},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )
