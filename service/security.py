"""Passwords (argon2id via argon2-cffi), bearer tokens and the CSRF token of a browser session.

Tokens are random; only their SHA-256 is stored, so a database leak gives no usable token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "csrf_for",
    "csrf_matches",
    "hash_password",
    "new_token",
    "prepare_password_checks",
    "token_sha256",
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
