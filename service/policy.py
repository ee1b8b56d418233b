"""Who may do what: the one place that decides. Everything else asks it.

The rules are data: `RULES` names the roles allowed each `Action`; `INSTITUTION_BOUND` names
the roles confined to their own institution's catalogue (registrars); `NAVIGATION` lists the
pages in the menu, each with the action it needs; `HOME` is where a role lands after login.
The route dependencies (`service.deps.require`), the operations (`service.operations`) and the
pages (their menus and buttons) all call the small functions below, never compare roles.

Adding a role: add it to `kernel.enums.Role`, to the actions it may take in `RULES`, and give
it a `HOME`. Adding a page: give its handler a dependency of `service.deps` for the action it
needs, and add it to `NAVIGATION` if it belongs in the menu.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from kernel.enums import Role

__all__ = [
    "HOME",
    "INSTITUTION_BOUND",
    "NAVIGATION",
    "RULES",
    "Action",
    "NavLink",
    "allowed_roles",
    "home_of",
    "institution_scope",
    "case_access",
    "may_share_case",
    "may",
    "may_on",
    "may_read_job",
    "may_read_search",
    "menu",
    "needs_institution",
]


class Action(StrEnum):
    """A kind of thing a caller does; each route and page needs exactly one."""

    #: Anything about the caller's own account: who am I, their API tokens, logging out.
    OWN_ACCOUNT = "own_account"
    #: Browse catalogue objects and their photos.
    READ_OBJECTS = "read_objects"
    #: Create, edit, report and delete objects and their photos.
    MANAGE_OBJECTS = "manage_objects"
    #: List the institutions.
    LIST_INSTITUTIONS = "list_institutions"
    #: Search the catalogues with a photo.
    SEARCH = "search"
    #: Draw the evidence picture of a search: one's own (`may_read_search`).
    SEARCH_EVIDENCE = "search_evidence"
    #: Read every search, its query photo and evidence, not just one's own.
    READ_ALL_SEARCHES = "read_all_searches"
    #: Submit batch listing checks and read their reports.
    RUN_JOBS = "run_jobs"
    #: Read batch jobs and their reports: one's own, or every account's with `READ_ALL_JOBS`.
    READ_JOBS = "read_jobs"
    #: Read every account's batch jobs and reports; without it, a caller sees their own.
    READ_ALL_JOBS = "read_all_jobs"
    #: Follow institutions, object types or cases and see, acknowledge their alerts
    #: (of the catalogues one may read).
    ALERTS = "alerts"
    #: Read the search log and the audit chain, and verify the chain.
    AUDIT = "audit"
    #: Manage accounts and institutions.
    ADMIN = "admin"
    #: Use cases at all: list and open those one may see (`case_access` says which).
    CASES = "cases"
    #: Open a new case (its author may then share it).
    OPEN_CASE = "open_case"
    #: Be given a share of a case: read it, and with a read-write share work on it.
    SHARE_CASES = "share_cases"
    #: Read every case, not only one's own and those shared with one.
    READ_ALL_CASES = "read_all_cases"
    #: Change every case (notes, shares, decisions), e.g. when its author has left.
    WRITE_ALL_CASES = "write_all_cases"


#: Action -> the roles that may take it.
RULES: Mapping[Action, frozenset[Role]] = {
    Action.OWN_ACCOUNT: frozenset(Role),
    Action.READ_OBJECTS: frozenset({Role.REGISTRAR, Role.INVESTIGATOR, Role.ANALYST}),
    Action.MANAGE_OBJECTS: frozenset({Role.REGISTRAR}),
    Action.LIST_INSTITUTIONS: frozenset(
        {Role.REGISTRAR, Role.INVESTIGATOR, Role.ANALYST, Role.ADMIN}
    ),
    Action.SEARCH: frozenset({Role.INVESTIGATOR}),
    # A search names a case and shows a seized item: its author's, and the overseers'.
    Action.SEARCH_EVIDENCE: frozenset({Role.INVESTIGATOR, Role.ADMIN, Role.AUDITOR}),
    Action.READ_ALL_SEARCHES: frozenset({Role.ADMIN, Role.AUDITOR}),
    Action.RUN_JOBS: frozenset({Role.ANALYST}),
    Action.READ_JOBS: frozenset({Role.ANALYST, Role.ADMIN}),
    Action.READ_ALL_JOBS: frozenset({Role.ADMIN}),
    Action.ALERTS: frozenset({Role.REGISTRAR, Role.INVESTIGATOR, Role.ANALYST}),
    Action.AUDIT: frozenset({Role.AUDITOR}),
    Action.ADMIN: frozenset({Role.ADMIN}),
    Action.CASES: frozenset({Role.INVESTIGATOR, Role.ANALYST, Role.ADMIN, Role.AUDITOR}),
    Action.OPEN_CASE: frozenset({Role.INVESTIGATOR}),
    # Analysts attach their batch checks to an investigator's case.
    Action.SHARE_CASES: frozenset({Role.INVESTIGATOR, Role.ANALYST}),
    # A case names suspects and seized items: overseers read it, only admins may step in.
    Action.READ_ALL_CASES: frozenset({Role.ADMIN, Role.AUDITOR}),
    Action.WRITE_ALL_CASES: frozenset({Role.ADMIN}),
}

#: Roles that read and manage objects of their own institution only, and need one.
INSTITUTION_BOUND: frozenset[Role] = frozenset({Role.REGISTRAR})

#: Where each role lands after logging in (and when it opens "/").
HOME: Mapping[Role, str] = {
    Role.REGISTRAR: "/objects",
    Role.INVESTIGATOR: "/search",
    Role.ANALYST: "/jobs",
    Role.ADMIN: "/admin",
    Role.AUDITOR: "/audit",
}


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    action: Action


#: The page menu, in order; a caller sees the links whose action they may take.
NAVIGATION: tuple[NavLink, ...] = (
    NavLink("/objects", "Catalogue", Action.READ_OBJECTS),
    NavLink("/upload", "Upload", Action.MANAGE_OBJECTS),
    NavLink("/search", "Search", Action.SEARCH),
    NavLink("/jobs", "Batch checks", Action.RUN_JOBS),
    NavLink("/cases", "Cases", Action.CASES),
    NavLink("/alerts", "Alerts", Action.ALERTS),
    NavLink("/audit", "Search log", Action.AUDIT),
    NavLink("/admin", "Admin", Action.ADMIN),
)


def may(role: Role, action: Action) -> bool:
    """Whether ``role`` may take ``action`` at all."""
    return role in RULES[action]


def allowed_roles(action: Action) -> tuple[Role, ...]:
    """The roles that may take ``action``, in the order of `Role` (for messages)."""
    return tuple(r for r in Role if r in RULES[action])


def may_on(role: Role, own_institution: str | None, action: Action, institution: str) -> bool:
    """Whether ``role`` (of ``own_institution``) may take ``action`` on a catalogue object of
    ``institution``."""
    if not may(role, action):
        return False
    return role not in INSTITUTION_BOUND or own_institution == institution


def may_read_search(role: Role, *, account_id: int, author_id: int | None) -> bool:
    """Whether account ``account_id`` of ``role`` may see a search by ``author_id`` (None: a
    command-line search, or its author's account is gone), its photo and its evidence."""
    if may(role, Action.READ_ALL_SEARCHES):
        return True
    return may(role, Action.SEARCH_EVIDENCE) and author_id is not None and author_id == account_id


def institution_scope(role: Role, own_institution: str | None) -> str | None:
    """The one institution ``role`` is confined to, or None when it reads every catalogue."""
    return (own_institution or "") if role in INSTITUTION_BOUND else None


def needs_institution(role: Role) -> bool:
    """Whether an account of ``role`` must belong to an institution."""
    return role in INSTITUTION_BOUND


def may_read_job(role: Role, *, account_id: int, owner_id: int | None) -> bool:
    """Whether ``role`` (account ``account_id``) may see a batch job of account ``owner_id``:
    its author, or a role that reads every job."""
    return (may(role, Action.READ_JOBS) and account_id == owner_id) or may(
        role, Action.READ_ALL_JOBS
    )


def case_access(
    role: Role, *, account_id: int, owner_id: int | None, shared: str | None
) -> str | None:
    """What account ``account_id`` of ``role`` may do with a case of ``owner_id`` that is
    shared with it as ``shared`` ("read", "write" or None): "write", "read", or None (the
    case is not to be confirmed to exist)."""
    if not may(role, Action.CASES):
        return None
    if may(role, Action.WRITE_ALL_CASES):
        return "write"
    if may(role, Action.OPEN_CASE) and owner_id is not None and owner_id == account_id:
        return "write"
    if may(role, Action.SHARE_CASES) and shared in ("read", "write"):
        return shared
    return "read" if may(role, Action.READ_ALL_CASES) else None


def may_share_case(role: Role, *, account_id: int, owner_id: int | None) -> bool:
    """Whether ``role`` (account ``account_id``) may share a case of ``owner_id`` or take a
    share back: its author, or a role that changes every case; not those it is shared with."""
    if may(role, Action.WRITE_ALL_CASES):
        return True
    return may(role, Action.OPEN_CASE) and owner_id is not None and owner_id == account_id


def home_of(role: Role) -> str:
    return HOME[role]


def menu(role: Role) -> list[NavLink]:
    """The links of `NAVIGATION` that ``role`` may follow."""
    return [link for link in NAVIGATION if may(role, link.action)]
