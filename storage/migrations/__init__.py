"""Alembic migrations of the catalogue database (SQLite and PostgreSQL).

Applied by `storage.migrate.upgrade` (``artmatch db upgrade``); a brand-new embedded SQLite
file is upgraded automatically when first opened. ``README`` in this directory says how to add
a revision.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import MetaData

__all__ = ["target_metadata"]


def target_metadata() -> MetaData:
    """The shared `Base.metadata` with every module that puts tables on it imported."""
    import storage.catalogue.orm  # the catalogue tables

    # The web service's tables (accounts, tokens, search log, jobs), where installed.
    with contextlib.suppress(ImportError):
        import storage.catalogue.accounts  # noqa: F401
    return storage.catalogue.orm.Base.metadata
