"""The answers about one stored claim that ``hhkb price --json`` prints and the web app's claim
page and ``/api`` route show: one document, built in one place."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from kb.claims import StoredClaim, price_claim, stored_claims_by_id, superseded_claims
from kb.models import AgencyClaim


def price_answer(session: Session, stored: StoredClaim, *, rules_year: int | None = None) -> dict:
    """The claim priced (``kb.claims.price_claim``) with every step's formula and citation, the
    outlier cap, and whether a later adjustment or void superseded it. Raises PricingError."""
    priced = price_claim(session, stored.claim, rules_year=rules_year)
    superseded = next((s.reason for s in superseded_claims(session, agency=stored.claim.agency_id)
                       if s.pk == stored.pk), None)
    result, claim = priced.result, priced.claim
    return {
        "agency_id": claim.agency_id, "claim_id": claim.claim_id, "type_of_bill": claim.type_of_bill,
        "period_from": claim.period_from.isoformat(), "hipps": claim.hipps, "cbsa": claim.cbsa,
        "period_through": claim.period_through.isoformat(),
        "rules_on": priced.rules_on.isoformat(), "rules_chosen_by": priced.chosen_by, "superseded": superseded,
        "inputs_supplied": list(priced.inputs.supplied) if priced.inputs else [],
        "total": str(result.total), "lupa": result.lupa,
        "outlier": str(result.outlier_amount), "outlier_cap": priced.outlier_cap_room(),
        "trace": [{k: str(v) for k, v in asdict(step).items()} for step in result.trace],
    }


#: The claims a listing shows at once.
CLAIMS_PER_PAGE = 100


def claims_list_answer(session: Session, agency_id: str, *, period_from: date | None = None,
                       period_through: date | None = None, hipps: str | None = None,
                       type_of_bill: str | None = None, page: int = 1, per_page: int = CLAIMS_PER_PAGE) -> dict:
    """One page of an agency's stored claims, in period order, with the filters applied: periods
    starting on or after ``period_from`` and on or before ``period_through``, one HIPPS code, one
    type of bill. No beneficiary data: the claim's database id, its ids, dates and codes."""
    table = AgencyClaim.__table__
    conditions = [table.c.agency_id == agency_id]
    if period_from is not None:
        conditions.append(table.c.period_from >= period_from)
    if period_through is not None:
        conditions.append(table.c.period_from <= period_through)
    if hipps:
        conditions.append(table.c.hipps == hipps.upper())
    if type_of_bill:
        conditions.append(table.c.type_of_bill == type_of_bill)
    total = session.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = session.execute(
        sa.select(table.c.id, table.c.claim_id, table.c.type_of_bill, table.c.period_from, table.c.period_through,
                  table.c.hipps, table.c.cbsa)
        .where(*conditions)
        .order_by(table.c.period_from, table.c.claim_id, table.c.type_of_bill)
        .limit(per_page).offset((page - 1) * per_page)
    ).mappings().all()
    return {
        "agency_id": agency_id, "total": total, "page": page, "pages": pages, "per_page": per_page,
        "filters": {"period_from": period_from, "period_through": period_through, "hipps": hipps or None,
                    "type_of_bill": type_of_bill or None},
        "claims": [{"id": row["id"], "claim_id": row["claim_id"], "type_of_bill": row["type_of_bill"],
                    "period_from": row["period_from"], "period_through": row["period_through"],
                    "hipps": row["hipps"], "cbsa": row["cbsa"]} for row in rows],
    }


def agency_claim(session: Session, agency_id: str, claim_pk: int) -> StoredClaim | None:
    """The stored claim with this database id when it is the agency's (None otherwise)."""
    found = stored_claims_by_id(session, [claim_pk])
    return found[0] if found and found[0].claim.agency_id == agency_id else None
