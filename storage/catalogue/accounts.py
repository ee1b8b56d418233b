"""Accounts of the web service and their API and session tokens (tables ``accounts`` and
``api_tokens``, on the catalogue's `Base`; the migrations own them).

Like every repository here, `Accounts` hands out plain records, never live ORM objects. Secrets
are never stored: passwords arrive already hashed and tokens as their SHA-256. The search log
is in `storage.catalogue.search_log`, batch jobs in `storage.catalogue.jobs`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Boolean, DateTime, ForeignKey, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.enums import Role, TokenKind
from kernel.errors import Conflict, NotFound
from storage.catalogue.orm import Base, Institution, enum_type, utcnow
from storage.catalogue.records import aware, created, institution_row
from storage.catalogue.sessions import Repository

__all__ = ["Account", "AccountRecord", "Accounts", "ApiToken"]


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(enum_type(Role, "account_role"))
    #: The institution a registrar manages; None for the other roles.
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The language the pages and reports speak to this account (`kernel.i18n.LOCALES`);
    #: None follows the browser.
    language: Mapped[str | None] = mapped_column(String(20), nullable=True)


class ApiToken(Base):
    """A bearer token for scripts (kind "api") or a browser login (kind "session")."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="api")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class AccountRecord:
    id: int
    username: str
    role: Role
    institution: str | None
    active: bool
    password_hash: str | None
    created_at: dt.datetime
    language: str | None = None


def _account(row: Account, institution: str | None) -> AccountRecord:
    return AccountRecord(
        id=row.id,
        username=row.username,
        role=row.role,
        institution=institution,
        active=row.active,
        password_hash=row.password_hash,
        created_at=created(row.created_at),
        language=row.language,
    )


class Accounts(Repository):
    """Accounts and their tokens.

    The tables belong to the migrations (revision 0002): open the engine with
    `create_catalogue`, which checks (or, for a new SQLite file, makes) the schema.
    """

    # -- accounts --------------------------------------------------------------------------

    def _inst_name(self, session: Session, institution_id: int | None) -> str | None:
        if institution_id is None:
            return None
        return session.scalar(select(Institution.name).where(Institution.id == institution_id))

    def create_account(
        self, *, username: str, password_hash: str | None, role: Role, institution: str | None
    ) -> AccountRecord:
        with self._session() as session:
            if session.scalar(select(Account.id).where(Account.username == username)):
                raise Conflict(f"an account {username!r} already exists")
            inst = institution_row(session, institution, create=True) if institution else None
            row = Account(
                username=username,
                password_hash=password_hash,
                role=role,
                institution_id=inst.id if inst else None,
            )
            session.add(row)
            session.flush()
            return _account(row, institution)

    def get(self, account_id: int) -> AccountRecord:
        with self._session() as session:
            row = session.get(Account, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}")
            return _account(row, self._inst_name(session, row.institution_id))

    def by_username(self, username: str) -> AccountRecord | None:
        with self._session() as session:
            row = session.scalar(select(Account).where(Account.username == username))
            return (
                None if row is None else _account(row, self._inst_name(session, row.institution_id))
            )

    def list_accounts(self) -> list[AccountRecord]:
        with self._session() as session:
            rows = session.scalars(select(Account).order_by(Account.username)).all()
            return [_account(r, self._inst_name(session, r.institution_id)) for r in rows]

    def update_account(
        self,
        account_id: int,
        *,
        password_hash: str | None = None,
        active: bool | None = None,
        role: Role | None = None,
        institution: str | None = None,
        language: str | None = None,
    ) -> AccountRecord:
        """Change what is given; ``language=""`` goes back to following the browser."""
        with self._session() as session:
            row = session.get(Account, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}")
            if password_hash is not None:
                row.password_hash = password_hash
                # A new password ends every session and API token made with the old one: a
                # reset is what an owner does after a leak.
                session.execute(delete(ApiToken).where(ApiToken.account_id == account_id))
            if active is not None:
                row.active = active
                if not active:
                    session.execute(delete(ApiToken).where(ApiToken.account_id == account_id))
            if role is not None:
                row.role = role
            if institution is not None:
                row.institution_id = institution_row(session, institution, create=True).id
            if language is not None:
                row.language = language or None
            session.flush()
            return _account(row, self._inst_name(session, row.institution_id))

    def count(self, role: Role | None = None) -> int:
        with self._session() as session:
            query = select(func.count(Account.id))
            if role is not None:
                query = query.where(Account.role == role)
            return session.scalar(query) or 0

    # -- tokens ----------------------------------------------------------------------------

    def add_token(
        self,
        *,
        account_id: int,
        name: str,
        token_sha256: str,
        kind: TokenKind = TokenKind.API,
        expires_at: dt.datetime | None = None,
    ) -> int:
        with self._session() as session:
            row = ApiToken(
                account_id=account_id,
                name=name,
                kind=kind,
                token_sha256=token_sha256,
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            return row.id

    def account_for_token(self, token_sha256: str, *, kind: str) -> AccountRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(ApiToken).where(ApiToken.token_sha256 == token_sha256, ApiToken.kind == kind)
            )
            if row is None:
                return None
            expires = aware(row.expires_at)
            if expires is not None and expires <= utcnow():
                session.delete(row)
                return None
            account = session.get(Account, row.account_id)
            if account is None or not account.active:
                return None
            return _account(account, self._inst_name(session, account.institution_id))

    def tokens_of(self, account_id: int) -> list[tuple[int, str, dt.datetime, dt.datetime | None]]:
        with self._session() as session:
            rows = session.scalars(
                select(ApiToken)
                .where(ApiToken.account_id == account_id, ApiToken.kind == TokenKind.API)
                .order_by(ApiToken.id)
            ).all()
            return [(r.id, r.name, created(r.created_at), aware(r.expires_at)) for r in rows]

    def delete_token(
        self,
        *,
        token_id: int | None = None,
        token_sha256: str | None = None,
        account_id: int | None = None,
    ) -> None:
        with self._session() as session:
            query = select(ApiToken)
            if token_id is not None:
                query = query.where(ApiToken.id == token_id)
            if token_sha256 is not None:
                query = query.where(ApiToken.token_sha256 == token_sha256)
            if account_id is not None:
                query = query.where(ApiToken.account_id == account_id)
            row = session.scalar(query)
            if row is None:
                raise NotFound("no such token")
            session.delete(row)
