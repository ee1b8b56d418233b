"""The web service's repositories (accounts and tokens, search log, batch jobs): one per
aggregate, on a migrated catalogue database; none of them creates tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from kernel.enums import JobStatus, Role
from kernel.errors import NotFound
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.accounts import Accounts
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.jobs import Jobs
from storage.catalogue.search_log import SearchLog
from storage.migrations import target_metadata


def test_constructors_leave_the_schema_to_the_migrations(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        for repository in (Catalogue, CatalogueQueries, Accounts, SearchLog, Jobs):
            repository(engine)
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_target_metadata_has_every_service_table() -> None:
    assert {"accounts", "api_tokens", "search_log", "batch_jobs"} <= set(target_metadata().tables)


def test_each_aggregate_on_one_database(tmp_path: Path) -> None:
    catalogue = create_catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        accounts, log, jobs = (cls(catalogue.engine) for cls in (Accounts, SearchLog, Jobs))
        alice = accounts.create_account(
            username="alice", password_hash=None, role=Role.ANALYST, institution=None
        )
        search_id = log.log_search(
            username=alice.username,
            account_id=alice.id,
            case_reference="case 1",
            query_sha256="0" * 64,
            filters={"status": ["stolen"]},
            matches=2,
            top_object_id="x",
            top_similarity=0.95,
        )
        assert log.get_search(search_id).filters == {"status": ["stolen"]}
        rows, total = log.search_log(offset=0, limit=10, username="alice")
        assert total == 1 and rows[0].username == "alice"

        jobs.create_job(job_id="j1", account=alice, manifest="m.csv", recheck=False, total=3)
        claimed = jobs.claim_next_job()
        assert claimed is not None and claimed.status is JobStatus.RUNNING
        assert jobs.claim_next_job() is None
        assert jobs.fail_unfinished_jobs("stopped") == 1
        assert jobs.get_job("j1").status is JobStatus.FAILED
        with pytest.raises(NotFound):
            jobs.get_job("nope")
    finally:
        catalogue.close()
