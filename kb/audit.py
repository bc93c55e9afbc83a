"""The audit log and the sign-offs of a year's review: what an agency's compliance program shows
an auditor.

Both tables are append-only, and the database holds to it (migration 0010's triggers refuse an
UPDATE or a DELETE), so no code path of the app, nor a mistake in one, can rewrite the record.

An event names who, when, what (:data:`ACTIONS`), the agency concerned and the client address;
its ``detail`` says which file, year or export, never a claim's content, a beneficiary or a
password. A sign-off keeps the review exactly as signed (its JSON) and the sha256 of that text,
so a copy downloaded later can be checked against it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from kb.models import AuditEvent, ReviewSignOff

ACTIONS: tuple[str, ...] = ("login", "login_failed", "login_locked", "logout", "upload", "upload_refused",
                            "view_claims", "view_claim", "view_impact", "view_findings", "view_review",
                            "export", "sign_off")
CSV_COLUMNS: tuple[str, ...] = ("id", "at", "username", "action", "agency_id", "address", "detail")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def record(session: Session, username: str, action: str, *, agency_id: str | None = None, address: str = "",
           detail: str = "", at: datetime | None = None) -> None:
    """Append one event (in the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(AuditEvent(at=at or _now(), username=username[:64], action=action, agency_id=agency_id,
                           address=address[:64], detail=detail[:400]))
    session.flush()


def events(session: Session, *, limit: int | None = None, action: str | None = None) -> list[AuditEvent]:
    """The newest events first."""
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).scalars())


@dataclass(frozen=True)
class SignedReview:
    id: int
    agency_id: str
    year: int
    username: str
    role: str
    signed_at: datetime
    content_sha256: str
    content: str


def canonical_json(document: dict) -> str:
    """The one text a review's hash is taken of: sorted keys, no spaces left to chance."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=True, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign_off(session: Session, *, agency_id: str, year: int, username: str, role: str, document: dict,
             at: datetime | None = None) -> SignedReview:
    """Store the review ``document`` as signed by ``username`` now; a later sign-off of the same
    year and agency is a new row (the earlier one stays)."""
    content = canonical_json(document)
    row = ReviewSignOff(agency_id=agency_id, year=year, username=username, role=role, signed_at=at or _now(),
                        content_sha256=sha256_text(content), content=content)
    session.add(row)
    session.flush()
    return _signed(row)


def _signed(row: ReviewSignOff) -> SignedReview:
    return SignedReview(row.id, row.agency_id, row.year, row.username, row.role, row.signed_at,
                        row.content_sha256, row.content)


def sign_offs(session: Session, *, agency_id: str, year: int | None = None) -> list[SignedReview]:
    query = sa.select(ReviewSignOff).where(ReviewSignOff.agency_id == agency_id).order_by(ReviewSignOff.id)
    if year is not None:
        query = query.where(ReviewSignOff.year == year)
    return [_signed(row) for row in session.execute(query).scalars()]


def signed_review(session: Session, signoff_id: int) -> SignedReview | None:
    row = session.get(ReviewSignOff, signoff_id)
    return _signed(row) if row is not None else None
