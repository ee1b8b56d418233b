"""`service.policy`, the one place that decides who may do what, and what is cheap at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.enums import Role
from service import policy
from service.policy import Action

#: The menu each role saw before the policy held it (the links base.html used to pick).
MENUS = {
    Role.REGISTRAR: ["/objects", "/upload", "/alerts"],
    Role.INVESTIGATOR: ["/objects", "/search", "/cases", "/alerts"],
    Role.ANALYST: ["/objects", "/jobs", "/cases", "/alerts"],
    Role.ADMIN: ["/cases", "/admin"],
    Role.AUDITOR: ["/cases", "/audit"],
}


def test_every_action_and_role_has_a_rule() -> None:
    assert set(policy.RULES) == set(Action)
    assert set(policy.HOME) == set(Role)
    assert all(policy.may(role, Action.OWN_ACCOUNT) for role in Role)


@pytest.mark.parametrize("role", list(Role))
def test_menu_and_home(role: Role) -> None:
    assert [link.href for link in policy.menu(role)] == MENUS[role]
    # A role's home page is one it may open.
    home = next(link for link in policy.NAVIGATION if link.href == policy.home_of(role))
    assert policy.may(role, home.action)


def test_registrars_are_bound_to_their_institution() -> None:
    assert policy.may_on(Role.REGISTRAR, "Museum A", Action.MANAGE_OBJECTS, "Museum A")
    assert not policy.may_on(Role.REGISTRAR, "Museum A", Action.MANAGE_OBJECTS, "Museum B")
    assert not policy.may_on(Role.REGISTRAR, "Museum A", Action.READ_OBJECTS, "Museum B")
    assert policy.may_on(Role.INVESTIGATOR, None, Action.READ_OBJECTS, "Museum B")
    assert not policy.may_on(Role.INVESTIGATOR, None, Action.MANAGE_OBJECTS, "Museum B")
    assert not policy.may_on(Role.AUDITOR, None, Action.READ_OBJECTS, "Museum B")
    assert policy.institution_scope(Role.REGISTRAR, "Museum A") == "Museum A"
    assert policy.institution_scope(Role.ANALYST, None) is None
    assert policy.needs_institution(Role.REGISTRAR)
    assert not policy.needs_institution(Role.ADMIN)


def test_allowed_roles_are_listed_in_role_order() -> None:
    assert policy.allowed_roles(Action.READ_OBJECTS) == (
        Role.REGISTRAR,
        Role.INVESTIGATOR,
        Role.ANALYST,
    )


def test_importing_the_app_hashes_no_password() -> None:
    code = (
        "import service.main, service.security as s; "
        "assert s._dummy_hash.cache_info().currsize == 0"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = os.environ | {"PYTHONPATH": root}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)
