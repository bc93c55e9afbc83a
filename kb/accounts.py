"""Local accounts of the web app, their roles and the agencies each may see.

Roles
    Each role may do what the one before it may, and more (:data:`ROLES`, lowest first):

    ``viewer``      the knowledge pages (codes, releases, rules, the HH PPS tables);
    ``coder``       + the claims and findings of the agencies granted to the account;
    ``compliance``  + impact, the annual review joined to the claims, and its sign-off;
    ``admin``       + loading claims files, the accounts, their grants and the audit log.

    An account sees only the agencies granted to it (``hhkb users grant``), an admin included:
    a grant is a decision about protected health information, not a consequence of a role.

Passwords
    Kept only as an Argon2id hash (argon2-cffi, with its default parameters, which follow RFC
    9106's recommendations); a hash made with older parameters is rehashed at the next login.
    Nothing here logs or returns a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session

from kb.models import WebAccount, WebAccountAgency

ROLES: tuple[str, ...] = ("viewer", "coder", "compliance", "admin")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
AGENCY_PATTERN = re.compile(r"^[0-9A-Za-z]{1,20}$")
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
#: Verified against when the account does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of any account")


class AccountError(ValueError):
    """A refused account operation, in words (never quoting a password)."""


@dataclass(frozen=True)
class Account:
    """An account as the web app uses it: no hash."""

    id: int
    username: str
    role: str
    disabled: bool
    agencies: tuple[str, ...]

    def may(self, role: str) -> bool:
        """Whether this account's role is ``role`` or above it."""
        return role_rank(self.role) >= role_rank(role)

    def sees(self, agency_id: str) -> bool:
        return agency_id in self.agencies


def role_rank(role: str) -> int:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return ROLES.index(role)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def _row(session: Session, username: str) -> WebAccount | None:
    return session.execute(sa.select(WebAccount).where(WebAccount.username == username)).scalar_one_or_none()


def _account(session: Session, row: WebAccount) -> Account:
    agencies = session.execute(sa.select(WebAccountAgency.agency_id).where(WebAccountAgency.account_id == row.id)
                               .order_by(WebAccountAgency.agency_id)).scalars().all()
    return Account(row.id, row.username, row.role, row.disabled, tuple(agencies))


def _existing(session: Session, username: str) -> WebAccount:
    row = _row(session, username)
    if row is None:
        raise AccountError(f"no account {username!r}")
    return row


def add_account(session: Session, username: str, password: str, *, role: str = "viewer",
                now: datetime | None = None) -> Account:
    if not USERNAME_PATTERN.match(username):
        raise AccountError("a user name is 1 to 64 letters, digits or . _ @ -")
    role_rank(role)
    if _row(session, username) is not None:
        raise AccountError(f"an account {username!r} already exists")
    row = WebAccount(username=username, password_hash=hash_password(password), role=role, disabled=False,
                     created_at=(now or datetime.now(UTC)).replace(tzinfo=None))
    session.add(row)
    session.flush()
    return _account(session, row)


def list_accounts(session: Session) -> list[Account]:
    rows = session.execute(sa.select(WebAccount).order_by(WebAccount.username)).scalars().all()
    return [_account(session, row) for row in rows]


def find_account(session: Session, username: str) -> Account | None:
    row = _row(session, username)
    return _account(session, row) if row is not None else None


def account_by_id(session: Session, account_id: int) -> Account | None:
    row = session.get(WebAccount, account_id)
    return _account(session, row) if row is not None else None


def set_role(session: Session, username: str, role: str) -> Account:
    role_rank(role)
    row = _existing(session, username)
    row.role = role
    session.flush()
    return _account(session, row)


def set_disabled(session: Session, username: str, disabled: bool = True) -> Account:
    row = _existing(session, username)
    row.disabled = disabled
    session.flush()
    return _account(session, row)


def set_password(session: Session, username: str, password: str) -> None:
    row = _existing(session, username)
    row.password_hash = hash_password(password)
    session.flush()


def grant(session: Session, username: str, agency_id: str) -> Account:
    if not AGENCY_PATTERN.match(agency_id):
        raise AccountError("an agency is its NPI (letters and digits, at most 20)")
    row = _existing(session, username)
    if session.get(WebAccountAgency, (row.id, agency_id)) is None:
        session.add(WebAccountAgency(account_id=row.id, agency_id=agency_id))
        session.flush()
    return _account(session, row)


def revoke(session: Session, username: str, agency_id: str) -> Account:
    row = _existing(session, username)
    granted = session.get(WebAccountAgency, (row.id, agency_id))
    if granted is not None:
        session.delete(granted)
        session.flush()
    return _account(session, row)


def authenticate(session: Session, username: str, password: str) -> Account | None:
    """The account when the name and password match and it is not disabled; otherwise None.
    Takes as long for an unknown name as for a wrong password."""
    row = _row(session, username) if USERNAME_PATTERN.match(username) else None
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
        session.flush()
    return _account(session, row)
