"""Query photos are deleted once no search has used them for the retention period; the
`artmatch prune-queries` command does it from settings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from typer.testing import CliRunner

from cli.main import app
from engine.evidence import query_blob_key
from engine.retention import prune_query_photos
from kernel.enums import Role
from kernel.settings import Settings
from storage.blobs import create_blob_store
from storage.catalogue import create_catalogue
from storage.catalogue.accounts import Accounts
from storage.catalogue.query_photos import QueryPhotoAges
from storage.catalogue.search_log import SearchLog, SearchLogRow

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _searched(settings: Settings, sha: str, *, days_ago: int) -> None:
    engine = create_catalogue(settings.database_url).engine
    account = Accounts(engine).by_username("inv") or Accounts(engine).create_account(
        username="inv", password_hash=None, role=Role.INVESTIGATOR, institution=None
    )
    search_id = SearchLog(engine).log_search(
        username=account.username,
        account_id=account.id,
        case_reference=None,
        query_sha256=sha,
        filters={},
        matches=0,
        top_object_id=None,
        top_similarity=None,
    )
    with engine.begin() as conn:
        conn.execute(
            update(SearchLogRow)
            .where(SearchLogRow.id == search_id)
            .values(created_at=NOW - dt.timedelta(days=days_ago))
        )


def _store(settings: Settings, *shas: str) -> None:
    blobs = create_blob_store(settings)
    for sha in shas:
        blobs.put(query_blob_key(sha), b"photo " + sha.encode())


def test_only_photos_unused_for_the_period_are_deleted(settings: Settings) -> None:
    old, again, recent, unlogged = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    _store(settings, old, again, recent, unlogged)
    _searched(settings, old, days_ago=400)
    _searched(settings, again, days_ago=400)
    _searched(settings, again, days_ago=10)  # searched with again: kept from that day
    _searched(settings, recent, days_ago=10)
    blobs = create_blob_store(settings)
    ages = QueryPhotoAges(create_catalogue(settings.database_url).engine)

    dry = prune_query_photos(blobs=blobs, ages=ages, days=365, now=NOW, dry_run=True)
    assert (dry.expired, dry.kept, dry.unlogged) == (1, 2, 1)
    assert blobs.exists(query_blob_key(old))

    result = prune_query_photos(blobs=blobs, ages=ages, days=365, now=NOW)
    assert result == dry
    assert not blobs.exists(query_blob_key(old))
    assert all(blobs.exists(query_blob_key(s)) for s in (again, recent, unlogged))


def test_the_command_uses_the_setting_and_zero_keeps_all(settings: Settings) -> None:
    sha = "e" * 64
    _store(settings, sha)
    _searched(settings, sha, days_ago=(dt.datetime.now(dt.UTC) - NOW).days + 30)
    runner = CliRunner()
    kept = settings.model_copy(update={"query_retention_days": 0})
    result = runner.invoke(app, ["prune-queries"], obj=kept, catch_exceptions=False)
    assert result.exit_code == 0 and "kept" in result.output
    assert create_blob_store(settings).exists(query_blob_key(sha))
    result = runner.invoke(app, ["prune-queries", "--days", "7"], obj=settings)
    assert result.exit_code == 0, result.output
    assert "deleted 1 query photo" in result.output
    assert not create_blob_store(settings).exists(query_blob_key(sha))
