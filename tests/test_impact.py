"""Impact of CY2023 -> CY2024 on generated agencies: every claim accounted for, exact components,
report totals equal to the sum over claims, the changes' touched claims, HCPCS changes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

import lxml.html
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb import database, ingest
from kb.claims import (
    TablesCache,
    claim_parameters,
    iter_stored_claims,
    load_claims_files,
    read_claims,
    rural_add_on_category,
    store_claims,
    superseded_claims,
    to_period_claim,
)
from kb.diff import HCPCS, Change, Provenance
from kb.impact import COMPONENTS, ZERO, impact
from kb.pricing import NON_VISIT_HCPCS, PricingError, apply_outlier_cap, attribute_change, price_period
from kb.store import FileIdentity
from kb.sample_agency import SAMPLE_BENEFICIARY_HASH_KEY, AgencyProfile, generate_sample, synthetic_npi
from loaders.x12_837i import write_837i
from regulations.catalogue import load_catalogue
from reports.impact import CSV_COLUMNS, build_impact_report, render_csv, render_html, render_json, render_markdown
from tests.conftest import BACKENDS, HHPPS_DIR

CATALOGUE = load_catalogue()
YEARS_FILES = [HHPPS_DIR / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2023, 2024)]
URBAN, RURAL = synthetic_npi(11), synthetic_npi(12)


@cache
def agencies():
    """Two agencies, 250 periods each: Cincinnati (CBSA 17140) and rural Ohio (99936)."""
    thresholds = {}
    with open(HHPPS_DIR / "hrg-2023.csv", newline="") as stream:
        thresholds = {row["code"]: int(row["threshold"]) for row in csv.DictReader(stream)}
    claims, member_ids = [], {}
    for agency_id, cbsa, county in ((URBAN, "17140", "39061"), (RURAL, "99936", "39001")):
        profile = AgencyProfile(agency_id=agency_id, state="OH", cbsa=cbsa, fips_county=county, periods=250)
        generated = generate_sample(profile, year=2023, seed=11, lupa_thresholds=thresholds)
        claims.extend(generated.claims)
        member_ids.update(generated.member_ids)
    # a notice of admission and a claim in a CBSA no wage index lists: both must be accounted for
    first = claims[0]
    claims.append(dataclasses.replace(first, claim_id="NOA-1", type_of_bill="032A"))
    claims.append(dataclasses.replace(first, claim_id="NOWHERE-1", cbsa="00001",
                                      value_codes=(("61", Decimal(1)), ("85", Decimal(39061)))))
    # an adjustment sent after its claim replaces it; a void cancels its claim: neither is priced
    adjusted, voided = [c for c in claims if c.agency_id == URBAN and c.type_of_bill == "0329"][1:3]
    claims.append(dataclasses.replace(adjusted, claim_id="ADJ-1", type_of_bill="0327"))
    claims.append(dataclasses.replace(voided, claim_id="VOID-1", type_of_bill="0328"))
    return tuple(claims), member_ids


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, tmp_path_factory):
    """One knowledge base per backend for the whole module: CY2023/CY2024 tables and the claims."""
    folder = tmp_path_factory.mktemp("impact")
    if request.param == "sqlite":
        path = folder / "hhkb.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        admin, template = request.getfixturevalue("postgres_admin")
        name = f"hhkb_impact_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    engine = database.open_database(url)
    ingest.load_files(engine, YEARS_FILES)
    claims, member_ids = agencies()
    claims_file = folder / "agencies.837i"
    with open(claims_file, "w", encoding="ascii", newline="") as stream:
        write_837i(claims, stream, member_ids=member_ids)
    load_claims_files(engine, [claims_file], beneficiary_hash_key=SAMPLE_BENEFICIARY_HASH_KEY)
    yield engine
    engine.dispose()
    if drop is not None:
        admin, name = drop
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(engine, **options):
    with Session(engine) as session:
        return impact(session, CATALOGUE, from_year=2023, to_year=2024, **options)


@pytest.fixture(scope="module")
def result(loaded):
    return run(loaded)


def test_every_claim_is_priced_or_listed_and_components_sum_exactly(result):
    stored = len(agencies()[0])
    assert len(result.claims) + len(result.unpriced) == stored
    adjusted, voided = [c for c in agencies()[0] if c.agency_id == URBAN and c.type_of_bill == "0329"][1:3]
    assert {u.claim_id: u.reason for u in result.unpriced} == {
        "NOA-1": "type of bill 032A is a notice of admission, not priced",
        "NOWHERE-1": "CBSA 00001 is not in the wage index in force on 2023-01-01",
        adjusted.claim_id: "replaced by adjustment ADJ-1 (type of bill 0327), loaded after it; not priced",
        voided.claim_id: "cancelled by void VOID-1 (type of bill 0328), loaded after it; not priced",
        "VOID-1": "a void (frequency 8) cancels an earlier claim; not priced",
    }
    assert "ADJ-1" in {c.claim_id for c in result.claims}
    assert len({c.pk for c in result.claims} | {u.pk for u in result.unpriced}) == stored
    for claim in result.claims:
        assert len(claim.components) == len(COMPONENTS)
        assert sum(claim.components, ZERO) == claim.difference
    totals = result.totals
    assert totals.after - totals.before == sum(amount for _, amount in totals.components)
    assert totals.before == sum(c.before for c in result.claims)
    assert [a.agency_id for a in result.agencies] == sorted([URBAN, RURAL])
    assert sum(a.claims for a in result.agencies) == totals.claims == stored - 5
    # the CY2024 rules moved these figures (DOMAIN.md section 3): each has a nonzero component
    moved = dict(totals.components)
    for name in ("case-mix weight", "30-day rate", "labor share", "wage index", "per-unit rates", "FDL ratio"):
        assert moved[name] != 0, name
    for name in ("loss-sharing ratio", "LUPA add-on factors", "rural add-on", "late NOA rule"):
        assert moved[name] == 0, name


def priced_by_the_pricer(session):
    """Every stored claim priced by the pricer itself, with no pricing class: ``price_period`` under
    CY2023's and CY2024's parameters, ``attribute_change``, and ``apply_outlier_cap`` over each
    agency's claims in period order. (pk -> (before, after, components)), {pk: reason} of the
    claims it refuses (and of the voids and the claims a later version took the place of), and
    {(pk, year): what the cap took}."""
    cache = TablesCache(session, CATALOGUE)
    before_tables, after_tables = cache.on(date(2023, 1, 1)), cache.on(date(2024, 1, 1))
    after_has_rural_add_on = any(getattr(after_tables.rate_year, f"rural_addon_{c}").value is not None for c in "abc")
    refused = {claim.pk: claim.reason for claim in superseded_claims(session)}
    priced = {}
    results_by_agency = defaultdict(lambda: ([], []))
    for stored in iter_stored_claims(session):
        claim = stored.claim
        if stored.pk in refused:
            continue
        if claim.type_of_bill == "0328":
            refused[stored.pk] = "a void (frequency 8) cancels an earlier claim; not priced"
            continue
        try:
            before_parameters = claim_parameters(claim, before_tables)
            after_parameters = claim_parameters(claim, after_tables)
            period_claim = to_period_claim(claim, before_tables)
            if period_claim.rural_add_on_category is None and after_has_rural_add_on:
                period_claim = dataclasses.replace(period_claim,
                                                   rural_add_on_category=rural_add_on_category(claim, after_tables))
            before, after = price_period(period_claim, before_parameters), price_period(period_claim, after_parameters)
            components = dict(attribute_change(period_claim, before_parameters, after_parameters))
        except PricingError as error:
            refused[stored.pk] = error.reason
            continue
        priced[stored.pk] = (before, after, components)
        for year, priced_result in enumerate((before, after)):
            results_by_agency[claim.agency_id][year].append((stored.pk, priced_result))
    taken = {}
    for years in results_by_agency.values():
        for year, results in enumerate(years):
            capped = apply_outlier_cap([priced_result for _, priced_result in results]).results
            for (pk, priced_result), after_cap in zip(results, capped):
                taken[(pk, year)] = priced_result.total - after_cap.total
    return priced, refused, taken


def unusual_claims():
    """Claims the grouped queries must not shape: a day above 32 units, a HCPCS code in lower
    case, two revenue codes of one discipline, a visit without a date, units not whole. Their ids
    sort after the generated claims' ("P..."), so none is the first claim of a pricing class."""
    claims = [c for c in agencies()[0] if c.agency_id == URBAN and c.type_of_bill == "0329"]
    busiest = max(claims, key=lambda c: sum(line.units for line in c.lines))
    site_of_service = next(c for c in claims if any(line.hcpcs == "Q5001" for line in c.lines))

    def visits(claim):
        return [line for line in claim.lines if line.revenue_code[:3] in ("042", "043", "044", "055", "056", "057")
                and line.hcpcs not in NON_VISIT_HCPCS]

    def nursing_days(claim):
        return [line.service_date for line in visits(claim) if line.revenue_code == "0551"]

    # a LUPA period with two nursing visits; a transfer whose first and last visits are nursing
    lupa = next(c for c in claims if len(nursing_days(c)) >= 2 and len(visits(c)) <= 3)
    transfer = next(c for c in claims if c.patient_status == "06" and len(nursing_days(c)) >= 3
                    and {min(nursing_days(c)), max(nursing_days(c))} == {min(line.service_date for line in visits(c)),
                                                                        max(line.service_date for line in visits(c))})
    first_and_last = {min(nursing_days(transfer)), max(nursing_days(transfer))}
    second_visit = sorted(visits(lupa), key=lambda line: line.line_number)[1]

    def changed(claim, claim_id, change):
        return dataclasses.replace(claim, claim_id=claim_id, lines=tuple(change(line) for line in claim.lines))

    one_day = busiest.period_from + timedelta(days=3)
    return [
        changed(busiest, "X-BUSY-1", lambda line: dataclasses.replace(line, service_date=one_day)
                if line.revenue_code.startswith("055") else line),
        changed(site_of_service, "X-LOWER-1", lambda line: dataclasses.replace(line, hcpcs=line.hcpcs.lower())
                if line.hcpcs == "Q5001" else line),
        changed(busiest, "X-SPLIT-1", lambda line: dataclasses.replace(line, revenue_code="0550")
                if line.revenue_code == "0551" and line.line_number % 2 else line),
        changed(lupa, "X-SPLIT-2", lambda line: dataclasses.replace(line, revenue_code="0550")
                if line == second_visit else line),
        changed(transfer, "X-SPLIT-3", lambda line: dataclasses.replace(line, revenue_code="0550")
                if line.revenue_code == "0551" and line.service_date in first_and_last else line),
        changed(busiest, "X-UNDATED-1", lambda line: dataclasses.replace(line, service_date=None)
                if line.revenue_code.startswith("055") and line.line_number % 3 == 0 else line),
        changed(busiest, "X-HALF-1", lambda line: dataclasses.replace(line, units=Decimal("1.5"))
                if line.line_number == 2 else line),
    ]


def test_every_claim_is_paid_what_the_pricer_itself_gives(loaded):
    """The pricing classes, the shapes read in SQL and the running outlier cap against the pricer
    run on each claim's lines, to the cent, with claims the grouped queries must not shape."""
    with Session(loaded) as session:
        store_claims(session, unusual_claims(), FileIdentity("unusual.csv", "0" * 64, 1), file_format="csv")
        result = impact(session, CATALOGUE, from_year=2023, to_year=2024)
        priced, refused, taken = priced_by_the_pricer(session)
        session.rollback()
    assert {u.pk: u.reason for u in result.unpriced} == refused
    assert "line 2: units 1.5 is not a whole number" in refused.values()
    assert {c.pk for c in result.claims} == set(priced)
    crafted = {c.claim_id: c for c in result.claims if c.claim_id.startswith("X-")}
    assert set(crafted) == {"X-BUSY-1", "X-LOWER-1", "X-SPLIT-1", "X-SPLIT-2", "X-SPLIT-3", "X-UNDATED-1"}
    assert crafted["X-SPLIT-2"].lupa_before and crafted["X-SPLIT-1"].has_outlier
    for claim in result.claims:
        before, after, components = priced[claim.pk]
        assert (claim.before, claim.after) == (before.total, after.total), claim.claim_id
        assert (claim.outlier_before, claim.outlier_after) == (before.outlier_amount, after.outlier_amount)
        assert (claim.lupa_before, claim.lupa_after) == (before.lupa, after.lupa)
        assert set(components) <= set(COMPONENTS)
        assert claim.components == tuple(components.get(name, ZERO) for name in COMPONENTS), claim.claim_id
        assert (claim.cap_before, claim.cap_after) == (taken[(claim.pk, 0)], taken[(claim.pk, 1)]), claim.claim_id
    assert result.totals.cap_before == sum(amount for (_, year), amount in taken.items() if year == 0) > 0
    assert result.totals.cap_after == sum(amount for (_, year), amount in taken.items() if year == 1)
    assert result.pricing_classes and result.priced_alone < len(result.claims) // 10


def test_pricing_classes_give_what_pricing_each_claim_alone_gives(loaded, result):
    grouped, alone = result, run(loaded, pricing_classes=False)
    assert grouped.claims == alone.claims and grouped.totals == alone.totals
    assert grouped.priced_alone < len(grouped.claims) and alone.priced_alone == len(alone.claims)


def test_the_outlier_cap_is_its_own_line_per_agency_and_year(result):
    for agency in result.agencies:
        members = [c for c in result.claims if c.agency_id == agency.agency_id]
        assert agency.cap_before == sum(c.cap_before for c in members)
        assert agency.paid_difference == agency.difference + agency.cap_line
    assert result.totals.cap_before > 0  # the generated agencies' outliers pass 10% of payments


def test_changes_touch_the_claims_of_their_hipps_cbsa_or_kind(result):
    by_key = {(item.change.change_type, item.change.key): item for item in result.changes}
    claims = {c.pk: c for c in result.claims}
    hipps = result.claims[0].hipps
    weight = by_key[("weight_changed", hipps)]
    assert set(weight.claim_pks) == {c.pk for c in result.claims if c.hipps == hipps}
    assert weight.dollars == sum(claims[pk].components[0] for pk in weight.claim_pks)
    cincinnati = by_key[("wage_index_changed", "17140")]
    assert {claims[pk].agency_id for pk in cincinnati.claim_pks} == {URBAN}
    assert len(by_key[("labor_share_changed", "labor_share")].claim_pks) == len(result.claims)
    fdl = by_key[("fdl_ratio_changed", "fdl_ratio")]
    assert set(fdl.claim_pks) == {c.pk for c in result.claims if c.has_outlier} and fdl.claim_pks
    assert by_key[("thirty_day_rate_changed", "thirty_day_rate_no_quality")].claim_pks == ()
    assert sum(item.dollars for item in result.changes if item.change.change_type == "wage_index_changed") == dict(
        result.totals.components)["wage index"]


def test_one_agency_only(loaded):
    result = run(loaded, agency=RURAL)
    assert {c.agency_id for c in result.claims} == {RURAL} and not result.unpriced
    assert [a.agency_id for a in result.agencies] == [RURAL]


def test_report_totals_equal_the_sum_over_claims(result):
    report = build_impact_report(result, generated_on=date(2024, 1, 2))
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(rows) == len(result.claims) and tuple(rows[0]) == CSV_COLUMNS
    for row in rows:
        assert sum(Decimal(row[name]) for name in COMPONENTS) == Decimal(row["difference"])
        assert Decimal(row["after"]) - Decimal(row["before"]) == Decimal(row["difference"])

    def csv_sum(column):
        return sum(Decimal(row[column]) for row in rows)

    def money(text):
        return Decimal(text.replace(",", "").replace("+", ""))

    page = lxml.html.fromstring(render_html(report))
    totals = page.xpath('//tr[@class="totals"]')[0]
    cell = {name: money(totals.xpath(f'td[contains(@class, " {name}") or @class="num {name}"]')[0].text_content())
            for name in ("before", "after", "difference", "cap-line", "paid-before", "paid-after", "paid-difference")}
    assert cell["before"] == csv_sum("before") and cell["after"] == csv_sum("after")
    assert cell["difference"] == csv_sum("difference")
    assert cell["cap-line"] == csv_sum("cap_before") - csv_sum("cap_after")
    assert cell["paid-before"] == csv_sum("paid_before") and cell["paid-after"] == csv_sum("paid_after")
    components = {tr.xpath("td")[0].text_content(): Decimal(tr.get("data-value"))
                  for tr in page.xpath('//tr[@class="component"]')}
    for name in COMPONENTS:
        assert components[name] == csv_sum(name), name
    agency_rows = page.xpath('//tr[@class="agency"]')
    assert sum(money(tr.xpath('td[@class="num before"]')[0].text_content()) for tr in agency_rows) == csv_sum("before")
    assert page.xpath("//svg") and page.xpath('//tr[@class="unpriced-claim"]')
    document = json.loads(render_json(report))
    assert Decimal(document["totals"]["difference"]) == csv_sum("difference")
    assert len(document["unpriced"]) == len(result.unpriced) == 5
    assert "| All claims |" in render_markdown(report)


def test_no_beneficiary_data_in_any_report(result):
    report = build_impact_report(result)
    _, member_ids = agencies()
    rendered = render_html(report) + render_markdown(report) + render_csv(report) + render_json(report)
    assert "SYN" not in rendered and "SAMPLE BENEFICIARY" not in rendered.upper()
    assert not any(key in rendered for key in list(member_ids)[:50])


def _stored(session):
    from kb.claims import iter_stored_claims

    return list(iter_stored_claims(session))


def test_read_claims_of_the_loaded_agencies(loaded):
    with Session(loaded) as session:
        assert read_claims(session, agency=RURAL) == [c for c in agencies()[0] if c.agency_id == RURAL]
