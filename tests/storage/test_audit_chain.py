"""The audit chain: appends link by hash; edits, deletions and reorderings of entries (and of
search log rows) are named by `AuditLog.verify`; concurrent appends never fork it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from storage.catalogue import create_catalogue
from storage.catalogue.audit import GENESIS, AuditLog
from storage.catalogue.search_log import SearchLog
from storage.migrate import alembic_config


@pytest.fixture
def url(tmp_path: Path, migrated_catalogue: Path) -> str:
    path = tmp_path / "catalogue.sqlite3"
    path.write_bytes(migrated_catalogue.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def log(url: str) -> Iterator[AuditLog]:
    catalogue = create_catalogue(url)
    yield AuditLog(catalogue.engine)
    catalogue.close()


def _search(log: AuditLog, username: str = "inv", case: str = "CASE-1") -> int:
    return SearchLog(log.engine).log_search(
        username=username,
        account_id=None,
        case_reference=case,
        query_sha256="ab" * 32,
        filters={"statuses": ["stolen"], "institutions": None},
        matches=1,
        top_object_id="A-1",
        top_similarity=0.9375,
    )


def _fill(log: AuditLog) -> None:
    log.append(actor="admin", action="token_create", subject="account inv", details={"for": "inv"})
    _search(log)
    log.append(actor="reg", action="object_status", subject="object A-1", details={"s": "stolen"})
    _search(log, case="CASE-2")
    log.append(actor="auditor", action="evidence", subject="search 1", details={"photo_id": 3})


def _sql(log: AuditLog, statement: str, **params: object) -> None:
    with log.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_entries_link_by_hash_and_verify(log: AuditLog) -> None:
    assert log.verify().ok and log.verify().entries == 0 and log.verify().head == GENESIS
    _fill(log)
    entries, total = log.entries(offset=0, limit=10)
    assert total == 5 and [e.seq for e in entries] == [5, 4, 3, 2, 1]
    assert entries[-1].prev_hash == GENESIS
    for newer, older in zip(entries, entries[1:], strict=False):
        assert newer.prev_hash == older.entry_hash
    search = entries[3]
    assert search.action == "search" and search.actor == "inv"
    assert search.details["search_id"] == 1 and search.details["case_reference"] == "CASE-1"
    status = log.verify()
    assert status.ok and status.entries == 5 and status.head == entries[0].entry_hash


@pytest.mark.parametrize(
    ("tamper", "broken_at", "words"),
    [
        ("UPDATE audit_log SET actor = 'someone' WHERE seq = 3", 3, "content was changed"),
        ("UPDATE audit_log SET details_json = '{}' WHERE seq = 1", 1, "content was changed"),
        ("DELETE FROM audit_log WHERE seq = 3", 3, "missing"),
        # Renumbered to hide the gap: the link to the entry before still breaks.
        (
            "DELETE FROM audit_log WHERE seq = 3; UPDATE audit_log SET seq = seq - 1 WHERE seq > 3",
            3,
            "does not follow",
        ),
        ("UPDATE search_log SET case_reference = 'OTHER' WHERE id = 2", 4, "search 2 was changed"),
        ("UPDATE search_log SET username = 'admin' WHERE id = 1", 2, "search 1 was changed"),
        ("DELETE FROM search_log WHERE id = 1", 2, "search 1 was deleted"),
    ],
)
def test_tampering_is_named(log: AuditLog, tamper: str, broken_at: int, words: str) -> None:
    _fill(log)
    for statement in tamper.split("; "):
        _sql(log, statement)
    status = log.verify()
    assert not status.ok
    assert status.broken_at == broken_at, status
    assert words in (status.problem or ""), status


def test_swapping_two_entries_is_caught(log: AuditLog) -> None:
    _fill(log)
    # Swap the positions of entries 2 and 3 (through a free number: seq is unique).
    _sql(log, "UPDATE audit_log SET seq = 99 WHERE seq = 2")
    _sql(log, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(log, "UPDATE audit_log SET seq = 3 WHERE seq = 99")
    status = log.verify()
    assert not status.ok and status.broken_at == 2


def test_a_search_row_added_outside_the_service_is_caught(log: AuditLog) -> None:
    _fill(log)
    _sql(
        log,
        "INSERT INTO search_log (username, created_at, query_sha256, filters_json, matches) "
        "VALUES ('ghost', '2026-01-01 00:00:00', :h, '{}', 0)",
        h="cd" * 32,
    )
    status = log.verify()
    assert not status.ok and "search 3 has no entry" in (status.problem or "")


def test_concurrent_appends_from_two_connections_never_fork(url: str) -> None:
    # Two engines on one file behave like two processes: each has its own connections.
    logs = [AuditLog(create_catalogue(url).engine) for _ in range(2)]
    errors: list[BaseException] = []

    def append(log: AuditLog, who: str) -> None:
        try:
            for i in range(15):
                if i % 3:
                    log.append(actor=who, action="test", subject=str(i))
                else:
                    _search(log, username=who, case=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=append, args=(log, f"p{n}")) for n, log in enumerate(logs * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    status = logs[0].verify()
    assert status.ok and status.entries == 60, status
    for log in logs:
        log.engine.dispose()


def test_upgrading_chains_the_searches_logged_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    raw = create_catalogue(url, check_schema=False)
    with raw.engine.connect() as conn:
        command.upgrade(alembic_config(connection=conn), "0003")
        conn.commit()
    with raw.engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO search_log (username, created_at, case_reference, query_sha256, "
                    "filters_json, matches, top_similarity) "
                    "VALUES ('old', :t, :c, :h, '{\"statuses\": null}', 1, 0.5)"
                ),
                {"t": f"2026-01-0{n + 1} 10:00:00.123456", "c": f"C{n}", "h": str(n) * 64},
            )
    with raw.engine.connect() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
        conn.commit()
    raw.close()
    catalogue = create_catalogue(url)
    try:
        log = AuditLog(catalogue.engine)
        assert log.verify().ok and log.verify().entries == 3
        _search(log)
        assert log.verify().entries == 4 and log.verify().ok
        _sql(log, "UPDATE search_log SET case_reference = 'X' WHERE id = 2")
        assert log.verify().broken_at == 2
    finally:
        catalogue.close()
