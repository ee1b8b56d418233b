"""An account's language (``accounts.language``, migration 0012): kept, changed, cleared."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from kernel.enums import Role
from storage.catalogue import create_catalogue
from storage.catalogue.accounts import Accounts


def test_an_accounts_language_is_kept_and_cleared(tmp_path: Path) -> None:
    catalogue = create_catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        assert "language" in {c["name"] for c in inspect(catalogue.engine).get_columns("accounts")}
        accounts = Accounts(catalogue.engine)
        bob = accounts.create_account(
            username="bob", password_hash=None, role=Role.INVESTIGATOR, institution=None
        )
        assert bob.language is None
        assert accounts.update_account(bob.id, language="sr_Latn").language == "sr_Latn"
        assert accounts.get(bob.id).language == "sr_Latn"
        # Other changes leave it alone; "" goes back to following the browser.
        assert accounts.update_account(bob.id, active=False).language == "sr_Latn"
        assert accounts.update_account(bob.id, language="").language is None
    finally:
        catalogue.engine.dispose()
