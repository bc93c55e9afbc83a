"""Commands for an agency's claims: ``hhkb claims load|generate``, ``hhkb claims inputs load``,
``hhkb price``, ``hhkb impact``.

Registered on the ``hhkb`` group by :func:`register`. Thin: parse arguments, call one library
function, print. No command prints member ids, names or other beneficiary data.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import Session

from kb.claims import (
    TablesCache,
    beneficiary_hash_key,
    find_claims,
    load_claims_files,
    price_claim,
    superseded_claims,
)
from kb.claim_answers import price_answer
from kb.cli_common import console, reports_errors
from reports.safety import echo, make_console
from kb.parameters import ParameterError
from kb.pricing import PricingError



def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=make_console(stderr=True), transient=True)


@click.group("claims")
def claims_group():
    """An agency's claims: load 837I or claims CSV files, generate a synthetic agency."""


@claims_group.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--no-quality-data", is_flag=True,
              help="The agency did not submit quality data (an 837I has no field for it).")
@click.pass_obj
@reports_errors
def claims_load(obj, paths, no_quality_data):
    """Load claims files (837I or claims CSV, recognised by content); bad claims are listed and skipped.

    The beneficiary hash key comes from HHKB_BENEFICIARY_KEY, or for a SQLite database from the
    file <database>.beneficiary-key beside it (made on first use).

    Example: hhkb claims load agency-2023.837i
    """
    with _progress() as progress:
        progress.add_task("loading claims", total=None)
        report = load_claims_files(obj.writer, paths, beneficiary_hash_key=beneficiary_hash_key(obj.writer, storing=True),
                                   quality_data_submitted=not no_quality_data)
    for result in report.files:
        echo(result.summary.describe() + (f"; {len(result.skipped)} claims skipped" if result.skipped else ""))
        for bad in result.skipped:
            echo(f"skipped: {bad}")
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True)


@claims_group.command("generate")
@click.option("--periods", type=click.IntRange(min=1), required=True, help="Number of 30-day period claims.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same claims).")
@click.option("--year", type=int, required=True, help="Year the periods start in.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="File to write.")
@click.option("--format", "file_format", type=click.Choice(["837i", "csv"]), default="837i", show_default=True)
@click.option("--agency-serial", type=click.IntRange(0, 99_999_999), default=1, show_default=True,
              help="Serial of the synthetic NPI (9 + serial + check digit).")
@click.option("--state", default="OH", show_default=True)
@click.option("--cbsa", default="17140", show_default=True, help="CBSA of the agency (value code 61).")
@click.option("--county", default="39061", show_default=True, help="FIPS county (value code 85).")
@click.option("--review-choice", type=click.IntRange(1, 4),
              help="Review Choice Demonstration option of an agency in IL, OH, NC, FL, TX or OK "
                   "(default there: 1, pre-claim review, so claims carry a tracking number).")
@click.pass_obj
@reports_errors
def claims_generate(obj, periods, seed, year, out, file_format, agency_serial, state, cbsa, county, review_choice):
    """Write a synthetic agency's claims (837I or claims CSV); LUPA thresholds from the loaded tables.

    Example: hhkb claims generate --periods 500 --seed 7 --year 2023 --out agency.837i
    """
    from kb.sample_agency import REVIEW_CHOICE_STATES, AgencyProfile, generate_sample, synthetic_npi
    from loaders.claims_csv import write_claims_csv
    from loaders.x12_837i import write_837i

    thresholds = None
    with Session(obj.engine) as session:
        try:
            thresholds = {h: c.lupa_threshold for h, c in TablesCache(session).on(date(year, 1, 1)).case_mix.items()}
        except ParameterError:
            echo(f"note: no HH PPS tables for {year} loaded; LUPA periods get one visit", err=True)
    if review_choice is None and state in REVIEW_CHOICE_STATES:
        review_choice = 1
    profile = AgencyProfile(agency_id=synthetic_npi(agency_serial), state=state, cbsa=cbsa, fips_county=county,
                            periods=periods, review_choice_option=review_choice)
    sample = generate_sample(profile, year=year, seed=seed, lupa_thresholds=thresholds)
    with open(out, "w", encoding="ascii", newline="") as stream:
        if file_format == "837i":
            write_837i(sample.claims, stream, member_ids=sample.member_ids)
        else:
            write_claims_csv(sample.claims, stream)
    lines = sum(len(claim.lines) for claim in sample.claims)
    echo(f"{out}: {len(sample.claims)} claims, {lines} lines, agency {profile.agency_id} ({file_format})")


@claims_group.group("inputs")
def inputs_group():
    """Pricing inputs a claim does not carry: NOA receipt dates, readmissions, VBP factors."""


@inputs_group.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
@reports_errors
def inputs_load(obj, paths):
    """Load pricing-inputs CSV files (docs/pricing-inputs.md), recognised by their header.

    Example: hhkb claims inputs load vbp-factors.csv noa-dates.csv
    """
    from kb.claim_inputs import load_supplied_inputs

    for summary in load_supplied_inputs(obj.writer, paths):
        echo(summary.describe())


@click.command("price")
@click.argument("claim_id")
@click.option("--agency", help="The agency (NPI) when several agencies have this claim id.")
@click.option("--type-of-bill", help="The type of bill when several claims have this id (an adjustment, 0327, "
              "often keeps its claim's id).")
@click.option("--rules", "rules_year", type=int,
              help="Price under January 1 of this year's rules (default: the year of the claim's through date, "
                   "as CMS's pricer chooses it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def price_command(obj, claim_id, agency, type_of_bill, rules_year, as_json):
    """Price one stored claim: every step with its formula and citation, and the 10% outlier cap.

    Example: hhkb price P0000012-01 --rules 2024
    """
    with Session(obj.engine) as session:
        found = find_claims(session, claim_id, agency=agency, type_of_bill=type_of_bill)
        if not found:
            named = "".join(f" for {what} {value}" for what, value in (("agency", agency), ("type of bill", type_of_bill))
                            if value)
            raise PricingError(claim_id, "no stored claim has this id" + named)
        if len(found) > 1:
            which = ", ".join(f"agency {s.claim.agency_id} type of bill {s.claim.type_of_bill}" for s in found)
            raise PricingError(claim_id, f"{len(found)} stored claims have this id ({which}): "
                                         "name one with --agency or --type-of-bill")
        if as_json:
            echo(json.dumps(price_answer(session, found[0], rules_year=rules_year), indent=2))
            return
        priced = price_claim(session, found[0].claim, rules_year=rules_year)
        superseded = next((s.reason for s in superseded_claims(session, agency=found[0].claim.agency_id)
                           if s.pk == found[0].pk), None)
    result = priced.result
    claim = priced.claim
    echo(f"claim {claim.claim_id} priced under CY{priced.rules_on.year}'s rules (in force on {priced.rules_on}), "
         f"chosen by {priced.chosen_by}")
    echo(f"agency {claim.agency_id}, type of bill {claim.type_of_bill}, HIPPS {claim.hipps}, CBSA {claim.cbsa}, "
         f"period {claim.period_from} to {claim.period_through}")
    table = Table("step", "amount", "formula", "citation")
    for step in result.trace:
        table.add_row(step.name, str(step.amount), step.formula, step.citation)
    console.print(table)
    echo(f"total {result.total}")
    echo(f"outlier cap: {priced.outlier_cap_room()}")
    if superseded:
        echo(f"note: this claim was {superseded.removesuffix('; not priced')}: hhkb impact does not count it")


@click.command("impact")
@click.option("--from", "from_year", type=int, required=True, help="The year of the rules compared from.")
@click.option("--to", "to_year", required=True,
              help="The year of the rules compared to, or a what-if scenario: its id (hhkb pending lists them) or a YAML file.")
@click.option("--agency", help="Only this agency's claims (NPI).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for impact.html, impact.md, impact.csv and impact.json.")
@click.option("--policy", type=click.Choice(["first", "last", "refuse"]), default="first", show_default=True,
              help="A CBSA listed twice in a wage index file: which row applies (CMS's pricer takes the first).")
@click.pass_obj
@reports_errors
def impact_command(obj, from_year, to_year, agency, out, policy):
    """What one year's HH PPS rules change against another's on the stored claims, in dollars.

    Example: hhkb impact --from 2023 --to 2024 --out reports/impact-2024
    (what-if: hhkb impact --from 2023 --to CMS-1780-P --out reports/what-if)
    """
    from kb.impact import impact
    from kb.store import catalogue_of, scenario_texts
    from regulations.scenario import find_scenario
    from reports.impact import build_impact_report, write_impact_report

    scenario = None
    with _progress() as progress, Session(obj.engine) as session:
        if not to_year.isdigit():
            try:
                scenario = find_scenario(to_year, scenario_texts(session))
            except LookupError as error:
                raise click.BadParameter(str(error), param_hint="--to") from None
        to_year = scenario.base_year if scenario else int(to_year)
        progress.add_task(f"pricing claims under CY{from_year} and {scenario.label if scenario else f'CY{to_year}'}",
                          total=None)
        result = impact(session, catalogue_of(session), from_year=from_year, to_year=to_year, agency=agency,
                        conflict_policy=policy, scenario=scenario)
    report = build_impact_report(result)
    for path in write_impact_report(report, out):
        echo(f"wrote {path}")
    totals = report.totals
    to_label = f"CY{to_year}"
    if scenario is not None:
        echo(scenario.label)
        for note in report.notes[1:3]:
            echo(note)
        to_label = scenario.scenario_id
    echo(f"{totals.claims} claims priced, {totals.unpriced} not priced")
    echo(f"CY{from_year} {totals.before}  {to_label} {totals.after}  difference {totals.difference} (before the outlier cap)")
    for row in report.components:
        if row.value not in ("0", "0.00"):
            echo(f"  {row.name:<22} {row.amount:>16}")
    echo(f"paid CY{from_year} {totals.paid_before}  {to_label} {totals.paid_after}  difference {totals.paid_difference}")


def register(main: click.Group) -> None:
    """Add the claims, price and impact commands to the ``hhkb`` group."""
    main.add_command(claims_group)
    main.add_command(price_command)
    main.add_command(impact_command)
