"""The case repository: cases, shares, attached searches and jobs, and review decisions kept
as a history (the newest wins), each change chained in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.enums import Role
from kernel.errors import Conflict, InvalidInput, NotFound
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.accounts import AccountRecord, Accounts
from storage.catalogue.audit import AuditLog
from storage.catalogue.cases import CaseAccess, Cases, ReviewDecision, latest_decisions
from storage.catalogue.jobs import Jobs
from storage.catalogue.search_log import SearchLog


@pytest.fixture
def catalogue(tmp_path: Path) -> Iterator[Catalogue]:
    catalogue = create_catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    yield catalogue
    catalogue.close()


def _account(catalogue: Catalogue, name: str, role: Role = Role.INVESTIGATOR) -> AccountRecord:
    return Accounts(catalogue.engine).create_account(
        username=name, password_hash=None, role=role, institution=None
    )


def _search(catalogue: Catalogue, who: AccountRecord) -> int:
    return SearchLog(catalogue.engine).log_search(
        username=who.username,
        account_id=who.id,
        case_reference=None,
        query_sha256="a" * 64,
        filters={},
        matches=1,
        top_object_id="A-1",
        top_similarity=0.9,
    )


def test_cases_shares_and_listing(catalogue: Catalogue) -> None:
    cases = Cases(catalogue.engine)
    alice, bob, carol = (_account(catalogue, n) for n in ("alice", "bob", "carol"))
    first = cases.open_case(owner=alice, reference="POL-1", title="Icons", notes="lead")
    second = cases.open_case(owner=bob, reference="POL-2", title="Coins")
    assert cases.get_case(first.id).notes == "lead" and first.owner_username == "alice"

    cases.share(first.id, account=bob, access=CaseAccess.READ, actor="alice")
    assert cases.share_of(first.id, bob.id) is CaseAccess.READ
    cases.share(first.id, account=bob, access=CaseAccess.WRITE, actor="alice")
    assert [(s.username, s.access) for s in cases.shares(first.id)] == [("bob", CaseAccess.WRITE)]
    assert cases.share_of(first.id, carol.id) is None

    mine, total = cases.list_cases(offset=0, limit=10, account_id=bob.id)
    assert total == 2 and [c.id for c in mine] == [second.id, first.id]
    assert cases.list_cases(offset=0, limit=10, account_id=carol.id) == ([], 0)
    assert cases.list_cases(offset=0, limit=1)[1] == 2

    updated = cases.update_case(first.id, actor="bob", changes={"notes": "two leads"})
    assert updated.notes == "two leads" and updated.updated_at >= first.updated_at
    with pytest.raises(InvalidInput):
        cases.update_case(first.id, actor="bob", changes={"owner_username": "bob"})
    cases.unshare(first.id, account=bob, actor="alice")
    assert cases.shares(first.id) == []
    with pytest.raises(NotFound):
        cases.unshare(first.id, account=bob, actor="alice")
    with pytest.raises(NotFound):
        cases.get_case(999)

    entries, _ = AuditLog(catalogue.engine).entries(offset=0, limit=50)
    actions = [e.action for e in reversed(entries)]
    assert actions == [
        "case_open",
        "case_open",
        "case_share",
        "case_share",
        "case_update",
        "case_unshare",
    ]
    update = next(e for e in entries if e.action == "case_update")
    # the chain keeps the notes' hash, not the notes
    assert "notes" not in update.details and len(update.details["notes_sha256"]) == 64
    assert AuditLog(catalogue.engine).verify().ok


def test_decisions_are_a_history_and_the_newest_wins(catalogue: Catalogue) -> None:
    cases = Cases(catalogue.engine)
    alice, bob = _account(catalogue, "alice"), _account(catalogue, "bob")
    case = cases.open_case(owner=alice, reference="POL-1", title="Icons")
    search_id = _search(catalogue, alice)

    def decide(who: AccountRecord, decision: ReviewDecision, object_id: str = "A-1"):  # type: ignore[no-untyped-def]
        return cases.decide(
            case.id,
            search_id=search_id,
            object_id=object_id,
            photo_id=7,
            decision=decision,
            note=None,
            account=who,
        )

    with pytest.raises(InvalidInput):  # not attached yet
        decide(alice, ReviewDecision.CONFIRMED)
    cases.attach_search(case.id, search_id=search_id, actor="alice")
    cases.attach_search(case.id, search_id=search_id, actor="alice")  # again: no change
    assert [a.key for a in cases.searches_of(case.id)] == [search_id]
    assert cases.case_of_search(search_id) == case.id
    other = cases.open_case(owner=alice, reference="POL-2", title="Other")
    with pytest.raises(Conflict):
        cases.attach_search(other.id, search_id=search_id, actor="alice")

    decide(alice, ReviewDecision.CONFIRMED)
    decide(bob, ReviewDecision.REJECTED)
    decide(alice, ReviewDecision.PENDING_REVIEW, "A-2")
    history = cases.decisions(case.id)
    assert [(d.object_id, d.decision, d.username) for d in history] == [
        ("A-2", ReviewDecision.PENDING_REVIEW, "alice"),
        ("A-1", ReviewDecision.REJECTED, "bob"),
        ("A-1", ReviewDecision.CONFIRMED, "alice"),
    ]
    latest = latest_decisions(history)
    assert latest[(search_id, "A-1")].decision is ReviewDecision.REJECTED
    assert latest[(search_id, "A-1")].username == "bob"
    assert cases.decisions(other.id) == []

    job_owner = _account(catalogue, "ana", Role.ANALYST)
    Jobs(catalogue.engine).create_job(
        job_id="j1", account=job_owner, manifest="m.csv", recheck=False, total=1
    )
    cases.attach_job(case.id, job_id="j1", actor="ana")
    assert [a.key for a in cases.jobs_of(case.id)] == ["j1"]
    with pytest.raises(Conflict):
        cases.attach_job(other.id, job_id="j1", actor="ana")
    assert AuditLog(catalogue.engine).verify().ok
