"""Alembic migrations of the catalogue database (SQLite and PostgreSQL).

Applied by `storage.migrate.upgrade` (``artmatch db upgrade``); a brand-new embedded SQLite
file is upgraded automatically when first opened. ``README`` in this directory says how to add
a revision.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["target_metadata"]


def target_metadata() -> MetaData:
    """The shared `Base.metadata` with every module that puts tables on it imported."""
    # The catalogue's tables, then the web service's: accounts and tokens, search log, jobs.
    import storage.catalogue.accounts
    import storage.catalogue.alerts
    import storage.catalogue.audit
    import storage.catalogue.cases
    import storage.catalogue.index_state
    import storage.catalogue.jobs
    import storage.catalogue.orm
    import storage.catalogue.search_log  # noqa: F401

    return storage.catalogue.orm.Base.metadata
