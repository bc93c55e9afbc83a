"""An agency's claims in the browser: upload a claims file, the claims with filters, a claim with
its lines and pricing trace, findings, impact, and the annual review joined to the claims with its
sign-off.

Every route here needs a session (``kb.web.auth``) whose account is granted the agency in the URL
(403 otherwise, for an agency that exists or not), and the role the route's work needs. Each view
of claims goes to the audit log. A claim is named in URLs only by its database id, never by its
claim id or anything of the beneficiary's; nothing of a claim is logged.

The routes call the functions the CLI calls: ``kb.claims.load_claims_files`` (``hhkb claims
load``), ``kb.claim_answers.price_answer`` (``hhkb price --json``), ``kb.rules.check_agency``
(``hhkb check --agency``), ``kb.impact.impact`` (``hhkb impact``), and the review of ``kb.review``
joined by ``kb.review_claims.join_claims`` (``hhkb review --claims``).
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb import answers, audit
from kb.accounts import Account
from kb.claim_answers import agency_claim, claims_list_answer, price_answer
from kb.claims import beneficiary_hash_key, load_claims_files
from kb.parameters import ParameterError
from kb.pricing import PricingError
from kb.web import auth
from kb.web.account_pages import page
from kb.web.app import ERRORS, ErrorBody
from loaders.errors import LoadError

AGENCY_PATTERN = r"^[0-9A-Za-z]{1,20}$"
UPLOAD_CHUNK = 1024 * 1024

AgencyId = Annotated[str, Path(pattern=AGENCY_PATTERN, description="The agency's NPI")]
ClaimPk = Annotated[int, Path(ge=1, le=2**62, description="The claim's database id")]
RulesYear = Annotated[int | None, Query(ge=2000, le=2100, description="Price under January 1 of this year's rules")]
ReviewYear = Annotated[int, Path(ge=1990, le=2100)]
Download = Annotated[Literal["html", "csv", "json", "md"] | None, Query(alias="format")]

Since = Annotated[date | None, Query(description="Periods starting on or after (YYYY-MM-DD)")]
Until = Annotated[date | None, Query(description="Periods starting on or before (YYYY-MM-DD)")]
HippsFilter = Annotated[str | None, Query(pattern=r"^[1-4][A-La-l][A-Ca-c][1-3]1$")]
BillFilter = Annotated[str | None, Query(pattern=r"^[0-9]{3,4}$", description="Type of bill, e.g. 0329")]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100000)]

FromYear = Annotated[int, Query(ge=2000, le=2100)]

CLAIMS_ERRORS = ERRORS | {
    401: {"model": ErrorBody, "description": "Not logged in"},
    403: {"model": ErrorBody, "description": "The account is not granted this agency, or its role is too low"}}


def _session(request: Request) -> Session:
    return Session(request.app.state.engine)


def granted(role: str):
    """A dependency: the account, of ``role`` or above, granted the agency of the URL."""
    needs_role = auth.require(role)

    def dependency(request: Request, agency: AgencyId) -> Account:
        account = needs_role(request)
        auth.require_agency(account, agency)
        return account

    return dependency


def _safe_file_name(name: str | None) -> str:
    """The upload's own name, reduced to a plain file name (no folders, no odd characters)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", FilePath(name or "upload").name)[:100].lstrip(".")
    return base or "upload"


def _download(text: str, media_type: str, file_name: str) -> Response:
    return Response(text, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{file_name}"'})


MEDIA_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "json": "application/json", "md": "text/markdown; charset=utf-8"}


def router() -> APIRouter:
    routes = APIRouter()

    # --- upload ---------------------------------------------------------------------------------

    @routes.get("/agencies/{agency}/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_form(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("admin"))]):
        return page(request, "web/upload.html.j2", agency=agency, result=None, problem=None,
                    limit_mb=request.app.state.settings.upload_limit_bytes // (1024 * 1024))

    @routes.post("/agencies/{agency}/upload", response_class=HTMLResponse, include_in_schema=False,
                 dependencies=[Depends(auth.check_csrf)])
    async def upload(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("admin"))],
                     claims_file: Annotated[UploadFile, File()]):
        """Store an 837I or claims CSV of this agency, exactly as ``hhkb claims load`` does."""
        limit = request.app.state.settings.upload_limit_bytes
        name = _safe_file_name(claims_file.filename)
        context = dict(agency=agency, limit_mb=limit // (1024 * 1024), result=None, problem=None)
        with tempfile.TemporaryDirectory(prefix="hhkb-upload-") as folder:
            path = FilePath(folder) / name
            size = 0
            with open(path, "wb") as stream:
                while chunk := await claims_file.read(UPLOAD_CHUNK):
                    size += len(chunk)
                    stream.write(chunk)
                    if size > limit:
                        auth.record(request, account.username, "upload_refused", agency_id=agency,
                                    detail=f"{name}: larger than {limit} bytes")
                        return page(request, "web/upload.html.j2", status_code=413,
                                    **context | {"problem": f"{name} is larger than the limit of "
                                                            f"{context['limit_mb']} MB"})
            engine = request.app.state.engine
            try:
                report = load_claims_files(engine, [path], beneficiary_hash_key=beneficiary_hash_key(engine),
                                           agencies=[agency])
            except LoadError as error:
                message = str(error).replace(folder + "/", "")
                where = ", ".join(f"{what} {value}" for what, value in (("line", error.line), ("field", error.field))
                                  if value)
                auth.record(request, account.username, "upload_refused", agency_id=agency,
                            detail=f"{name}: refused" + (f" at {where}" if where else ""))
                return page(request, "web/upload.html.j2", status_code=400, **context | {"problem": message})
        result = report.files[0]
        summary = result.summary.describe().replace(folder + "/", "")
        auth.record(request, account.username, "upload", agency_id=agency,
                    detail=f"{name} ({result.file_format}, {size} bytes): {len(result.skipped)} claims skipped")
        skipped = [str(bad).replace(folder + "/", "") for bad in result.skipped]
        return page(request, "web/upload.html.j2", **context | {"result": {"summary": summary, "skipped": skipped,
                                                                           "warnings": result.warnings}})

    # --- the claims -----------------------------------------------------------------------------

    def list_answer(request, agency, account, period_from, period_through, hipps, type_of_bill, page_number):
        with _session(request) as session:
            answer = claims_list_answer(session, agency, period_from=period_from, period_through=period_through,
                                        hipps=hipps, type_of_bill=type_of_bill, page=page_number)
        auth.record(request, account.username, "view_claims", agency_id=agency, detail=f"page {answer['page']}")
        return answer

    @routes.get("/api/agencies/{agency}/claims", tags=["claims"], responses=CLAIMS_ERRORS)
    def api_claims(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("coder"))],
                   period_from: Since = None, period_through: Until = None, hipps: HippsFilter = None,
                   type_of_bill: BillFilter = None, page_number: PageNumber = 1) -> JSONResponse:
        """One page of the agency's claims, filtered by period, HIPPS code and type of bill."""
        return JSONResponse(answers.jsonable(list_answer(request, agency, account, period_from, period_through,
                                                         hipps, type_of_bill, page_number)))

    @routes.get("/agencies/{agency}/claims", response_class=HTMLResponse, include_in_schema=False)
    def claims_page(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("coder"))],
                    period_from: Since = None, period_through: Until = None, hipps: HippsFilter = None,
                    type_of_bill: BillFilter = None, page_number: PageNumber = 1):
        answer = list_answer(request, agency, account, period_from, period_through, hipps, type_of_bill, page_number)
        query = {name: value for name, value in answer["filters"].items() if value}
        return page(request, "web/claims.html.j2", agency=agency, answer=answer, query=query)

    def claim_answer(request, agency, claim_pk, account, rules_year) -> dict:
        with _session(request) as session:
            stored = agency_claim(session, agency, claim_pk)
            if stored is None:
                raise StarletteHTTPException(404, "this agency has no claim with this id")
            claim = stored.claim
            try:
                priced, problem = price_answer(session, stored, rules_year=rules_year), None
            except (PricingError, ParameterError) as error:
                priced, problem = None, str(error.args[-1] if error.args else error)
        auth.record(request, account.username, "view_claim", agency_id=agency, detail=f"claim {claim_pk}")
        lines = [{"line_number": line.line_number, "revenue_code": line.revenue_code, "hcpcs": line.hcpcs,
                  "hipps": line.hipps, "modifiers": list(line.modifiers), "units": str(line.units),
                  "charge": str(line.charge), "service_date": line.service_date} for line in claim.lines]
        return {"id": claim_pk, "agency_id": agency, "claim_id": claim.claim_id, "type_of_bill": claim.type_of_bill,
                "period_from": claim.period_from, "period_through": claim.period_through, "hipps": claim.hipps,
                "cbsa": claim.cbsa, "diagnoses": list(claim.diagnoses), "lines": lines, "rules_year": rules_year,
                "price": priced, "not_priced": problem}

    @routes.get("/api/agencies/{agency}/claims/{claim_pk}", tags=["claims"], responses=CLAIMS_ERRORS)
    def api_claim(request: Request, agency: AgencyId, claim_pk: ClaimPk,
                  account: Annotated[Account, Depends(granted("coder"))], rules_year: RulesYear = None) -> JSONResponse:
        """A claim's lines and its pricing trace (``price`` is ``hhkb price --json``'s document)."""
        return JSONResponse(answers.jsonable(claim_answer(request, agency, claim_pk, account, rules_year)))

    @routes.get("/agencies/{agency}/claims/{claim_pk}", response_class=HTMLResponse, include_in_schema=False)
    def claim_page(request: Request, agency: AgencyId, claim_pk: ClaimPk,
                   account: Annotated[Account, Depends(granted("coder"))], rules_year: RulesYear = None):
        return page(request, "web/claim.html.j2", claim=claim_answer(request, agency, claim_pk, account, rules_year))

    # --- findings and impact: the reports' own pages and downloads --------------------------------

    @routes.get("/agencies/{agency}/findings", include_in_schema=False)
    def findings_page(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("coder"))],
                      download: Download = None):
        from kb.rules import check_agency
        from reports.findings import build_findings_report, render

        with _session(request) as session:
            run = check_agency(session, agency)
        report = build_findings_report(run.findings, rules=run.rules, claims_checked=run.claims_checked,
                                       title=f"Billing rule findings: agency {agency}", sources=run.sources)
        fmt = download or "html"
        auth.record(request, account.username, "export" if download else "view_findings", agency_id=agency,
                    detail=f"findings {fmt}")
        text = render(report, fmt)
        return (_download(text, MEDIA_TYPES[fmt], f"findings-{agency}.{fmt}") if download
                else HTMLResponse(text))

    @routes.get("/agencies/{agency}/impact", include_in_schema=False)
    def impact_page(request: Request, agency: AgencyId, account: Annotated[Account, Depends(granted("compliance"))],
                    from_year: FromYear, to_year: FromYear, download: Download = None):
        from kb.impact import impact
        from kb.store import catalogue_of
        from reports.impact import build_impact_report, render_csv, render_html, render_json, render_markdown

        with _session(request) as session:
            try:
                result = impact(session, catalogue_of(session), from_year=from_year, to_year=to_year, agency=agency)
            except ParameterError as error:
                raise StarletteHTTPException(404, str(error.args[0] if error.args else error)) from None
        report = build_impact_report(result)
        fmt = download or "html"
        auth.record(request, account.username, "export" if download else "view_impact", agency_id=agency,
                    detail=f"impact CY{from_year} to CY{to_year} {fmt}")
        renderers = {"html": render_html, "csv": render_csv, "json": render_json, "md": render_markdown}
        text = renderers[fmt](report)
        return (_download(text, MEDIA_TYPES[fmt], f"impact-{agency}-{from_year}-{to_year}.{fmt}") if download
                else HTMLResponse(text))

    # --- the annual review and its sign-off ------------------------------------------------------

    def review_document(request: Request, agency: str, year: int) -> dict:
        """The review of ``year`` joined to the agency's claims, as ``hhkb review --format json`` writes it."""
        from kb.review import ReviewError, annual_review
        from kb.review_claims import join_claims
        from kb.store import catalogue_of
        from reports.changes import render_json

        with _session(request) as session:
            catalogue = catalogue_of(session)
            try:
                found = annual_review(session, catalogue, year)
            except ReviewError as error:
                raise StarletteHTTPException(404, str(error.args[0] if error.args else error)) from None
            join = join_claims(session, catalogue, year, found.changes, agencies=[agency])
            report = answers.review_report(found, join=join)
        return {"agency_id": agency, "year": year, "review": json.loads(render_json(report))}

    @routes.get("/agencies/{agency}/review/{year}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, agency: AgencyId, year: ReviewYear,
                    account: Annotated[Account, Depends(granted("compliance"))]):
        document = review_document(request, agency, year)
        with _session(request) as session:
            signed = audit.sign_offs(session, agency_id=agency, year=year)
        auth.record(request, account.username, "view_review", agency_id=agency, detail=f"review {year}")
        return page(request, "web/agency_review.html.j2", agency=agency, year=year, review=document["review"],
                    content_sha256=audit.sha256_text(audit.canonical_json(document)), signed=signed)

    @routes.post("/agencies/{agency}/review/{year}/sign-off", include_in_schema=False,
                 dependencies=[Depends(auth.check_csrf)])
    def sign_off(request: Request, agency: AgencyId, year: ReviewYear,
                 account: Annotated[Account, Depends(granted("compliance"))]):
        """Sign the review as it is now: its JSON is stored with its sha256, append-only."""
        document = review_document(request, agency, year)
        from kb.database import transaction

        with transaction(request.app.state.engine) as session:
            signed = audit.sign_off(session, agency_id=agency, year=year, username=account.username,
                                    role=account.role, document=document)
            audit.record(session, account.username, "sign_off", agency_id=agency, address=auth.client_address(request),
                         detail=f"review {year}, sign-off {signed.id}, sha256 {signed.content_sha256}")
        return RedirectResponse(f"/agencies/{agency}/review/{year}#sign-off-{signed.id}", status_code=303)

    @routes.get("/agencies/{agency}/review/{year}/signed/{signoff_id}", include_in_schema=False)
    def signed_copy(request: Request, agency: AgencyId, year: ReviewYear, signoff_id: Annotated[int, Path(ge=1)],
                    account: Annotated[Account, Depends(granted("compliance"))]):
        """The review exactly as it was signed (its sha256 is the sign-off's)."""
        with _session(request) as session:
            signed = audit.signed_review(session, signoff_id)
        if signed is None or signed.agency_id != agency or signed.year != year:
            raise StarletteHTTPException(404, "no such sign-off of this agency's review")
        auth.record(request, account.username, "export", agency_id=agency, detail=f"signed review {signoff_id}")
        return Response(signed.content, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="review-{year}-{agency}-signed-'
                                                        f'{signoff_id}.json"',
                                 "X-Content-SHA256": signed.content_sha256})

    return routes
