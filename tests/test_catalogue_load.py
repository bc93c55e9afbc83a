"""Rule years as data files: a catalogue YAML loaded like any other source, merged with the
package's catalogue, and a year whose constants are unknown refused rather than guessed (both
databases where a database is involved)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from kb import ingest
from kb.cli import main
from kb.impact import impact
from kb.models import CatalogueDocument, Release
from kb.parameters import ParameterError, year_tables
from kb.pricing import ClaimLine, PeriodClaim, price_period
from kb.review import annual_review
from kb.store import CATALOGUE_SOURCE, catalogue_of
from loaders.errors import LoadError
from regulations.catalogue import CONSTANT_NAMES, DEFAULT_PATH, Catalogue, load_catalogue, merge, parse_catalogue
from tests.conftest import HHPPS_DIR

#: The CY2026 constants no source reached gives (regulations/hhpps_rules.yaml, CMS-1828-F).
CY2026_UNKNOWN = ("rate_30_day_no_quality", "labor_share", "lupa_addon_slp", "lupa_addon_ot", "late_noa_grace_days")

WAGE_INDEX_HEADER = ("cbsa,effectiveDate,geographicWageIndex,name,imputedFloorWageIndex,reclassifiedWageIndex,"
                     "ruralFloorWageIndex,size")


def wage_index_fixture(folder: Path, year: int, rows: int = 40) -> Path:
    """The first rows of CMS's wage index of ``year`` in the eight-column layout of 2020-2024."""
    with open(HHPPS_DIR / f"cbsa-wage-index-{year}.csv", newline="", encoding="utf-8-sig") as stream:
        records = [row for row in csv.reader(stream)][1 : rows + 1]
    path = folder / f"wage-index-{year}-fixture.csv"
    lines = [WAGE_INDEX_HEADER] + [",".join(row[:3]) + f",{row[3].strip()},,,," for row in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def year_files(folder: Path, year: int) -> list[Path]:
    return [HHPPS_DIR / f"hrg-{year}.csv", HHPPS_DIR / f"rev-{year}.csv", wage_index_fixture(folder, year)]


def constants_block(values: dict[str, str], citation: str) -> str:
    return "".join(
        f'      {name}: {{value: "{value}", citation: "{citation}", confirmed: false}}\n' for name, value in values.items()
    )


#: A complete CY2026 entry (test figures) that supersedes the package's CMS-1828-F.
CY2026_FIGURES = {
    "rate_30_day": "2038.22", "rate_30_day_no_quality": "1998.41", "labor_share": "0.749", "fdl_ratio": "0.37",
    "loss_sharing_ratio": "0.80", "lupa_addon_sn": "1.7200", "lupa_addon_pt": "1.6225", "lupa_addon_slp": "1.6696",
    "lupa_addon_ot": "1.7238", "rural_addon_a": "none", "rural_addon_b": "none", "rural_addon_c": "none",
    "outlier_cap_ratio": "0.10", "late_noa_grace_days": "5",
}
CY2026_FILE = (
    "# CY 2026 constants as read in the rule's text (figures for the tests)\n"
    "regulations:\n"
    "  - id: CMS-1828-F\n"
    "    kind: hh_pps_rule\n"
    "    title: CY 2026 HH PPS final rule\n"
    "    citation: 90 FR 55342\n"
    "    published: 2025-12-02\n"
    "    effective: 2026-01-01\n"
    "    supersedes: CMS-1828-F\n"
    "    confirmed: false\n"
    "    note: the constants the package lacks, from the rule's tables\n"
    "    constants:\n"
) + constants_block(CY2026_FIGURES, "90 FR 55342 (CMS-1828-F)")


def cy2025_entry(rate: str, *, document_id: str = "CMS-1803-F", extra: str = "") -> str:
    """CMS-1803-F as the package has it, but for the 30-day rate, plus ``extra`` entry lines."""
    package = load_catalogue().get("CMS-1803-F")
    values = {name: "none" if cited.value is None else str(cited.value) for name, cited in package.constants.items()}
    values["rate_30_day"] = rate
    return (
        "regulations:\n"
        f"  - id: {document_id}\n"
        "    kind: hh_pps_rule\n"
        "    title: CY 2025 HH PPS final rule\n"
        "    citation: 89 FR 88354\n"
        "    published: 2024-11-07\n"
        "    effective: 2025-01-01\n"
        "    confirmed: false\n"
        f"{extra}"
        "    constants:\n"
    ) + constants_block(values, "89 FR 88354 (CMS-1803-F)")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def catalogue_releases(engine) -> list[Release]:
    with Session(engine) as session:
        return session.exec(sa.select(Release).where(Release.source == CATALOGUE_SOURCE).order_by(Release.id)).scalars().all()


def tables_on(engine, on: date, catalogue: Catalogue | None = None):
    with Session(engine) as session:
        return year_tables(session, catalogue or catalogue_of(session), on, conflict_policy="first")


WORKED_CLAIM = PeriodClaim(
    claim_id="W2025", type_of_bill="0329", from_date=date(2025, 3, 1), through_date=date(2025, 3, 30),
    admission_date=date(2025, 3, 1), hipps="1FC11", wage_index=Decimal("1.0"), rural_add_on_category=None,
    quality_data_submitted=True, condition_codes=(), patient_status="01",
    lines=tuple(ClaimLine("0551", "G0299", 4, date(2025, 3, d)) for d in (2, 5, 9, 12, 16, 20)),
)


# --- CY2025 in the package ---------------------------------------------------------------------


def test_cy2025_is_in_force_in_2025_and_prices_domain_worked_example(engine, tmp_path):
    ingest.load_files(engine, year_files(tmp_path, 2025))
    tables = tables_on(engine, date(2025, 6, 1))
    year = tables.rate_year
    assert year.rule == "CMS-1803-F" and year.effective_from == date(2025, 1, 1)
    assert (year.rate_30_day.value, year.rate_30_day_no_quality.value) == (Decimal("2057.35"), Decimal("2017.28"))
    assert (year.labor_share.value, year.fdl_ratio.value, year.loss_sharing_ratio.value) == (
        Decimal("0.749"), Decimal("0.35"), Decimal("0.80"))
    assert (year.lupa_addon_sn.value, year.lupa_addon_pt.value, year.lupa_addon_slp.value, year.lupa_addon_ot.value) == (
        Decimal("1.72"), Decimal("1.6225"), Decimal("1.6696"), Decimal("1.7238"))
    assert year.rural_addon_a.value is None and year.outlier_cap_ratio.value == Decimal("0.10")
    assert year.late_noa_grace_days.value == Decimal("5")
    for name in CONSTANT_NAMES:
        cited = getattr(year, name)
        assert not cited.confirmed and cited.note, name
        assert "2025.1" in cited.citation, name
    assert tables.sources["hrg"].regulation == "CMS-1803-F"  # the table's release names its rule
    parameters = tables.pricing_parameters("1FC11", quality_data_submitted=True, rural=False)
    assert parameters.case_mix_weight == Decimal("1.0912")
    assert "89 FR 88354" in parameters.citations["thirty_day_rate"]
    assert price_period(WORKED_CLAIM, parameters).period_payment == Decimal("2244.98")  # 1.0912 x 2,057.35
    # The outlier threshold amounts of CMS's CY2025 pricer: 30-day rate x FDL, rounded.
    assert (year.rate_30_day.value * year.fdl_ratio.value).quantize(Decimal("0.01")) == Decimal("720.07")
    assert (year.rate_30_day_no_quality.value * year.fdl_ratio.value).quantize(Decimal("0.01")) == Decimal("706.05")


def test_cy2025_rule_dates_and_citation():
    rule = load_catalogue().get("CMS-1803-F")
    assert (rule.document_number, rule.citation) == ("2024-25441", "89 FR 88354")
    assert (rule.published, rule.effective) == (date(2024, 11, 7), date(2025, 1, 1))
    cy2026 = load_catalogue().get("CMS-1828-F")
    assert (cy2026.document_number, cy2026.citation, cy2026.published) == ("2025-21767", "90 FR 55342", date(2025, 12, 2))


def test_params_command_shows_cy2025_with_citations(database_url, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["--db", database_url, "load", *map(str, year_files(tmp_path, 2025))]).exit_code == 0
    result = runner.invoke(main, ["--db", database_url, "params", "2025-06-01"])
    assert result.exit_code == 0, result.output
    assert "CMS-1803-F (89 FR 88354, published 2024-11-07, effective 2025-01-01)" in result.output
    for figure in ("2057.35", "2017.28", "0.749", "1.6225", "1.7238", "calculation version 2025.1"):
        assert figure in result.output
    assert "$720.07" in result.output


# --- a year whose constants are unknown ------------------------------------------------------------


def test_unknown_constants_are_refused_by_name_with_how_to_add_them(engine, tmp_path):
    ingest.load_files(engine, year_files(tmp_path, 2026))
    with pytest.raises(ParameterError) as error:
        tables_on(engine, date(2026, 3, 1))
    message = str(error.value)
    assert f"CY2026 are unknown: {', '.join(CY2026_UNKNOWN)}" in message
    assert "CMS-1828-F (the rule in force) does not give them" in message
    assert "hhkb load FILE.yaml" in message and "supersedes: CMS-1828-F" in message
    assert "rate_30_day_no_quality: {value:" in message


def test_a_year_with_tables_but_no_rule_is_refused_not_priced_with_the_year_before(engine, tmp_path):
    ingest.load_files(engine, year_files(tmp_path, 2026))
    package = load_catalogue()
    without_2026 = Catalogue(package.path, tuple(r for r in package.rules if r.document_id != "CMS-1828-F"))
    with pytest.raises(ParameterError) as error:
        tables_on(engine, date(2026, 3, 1), without_2026)
    message = str(error.value)
    assert f"CY2026 are unknown: {', '.join(CONSTANT_NAMES)}" in message
    assert "no rule in the catalogue takes effect that year" in message and "effective: 2026-01-01" in message


def test_price_impact_diff_and_params_refuse_the_unknown_year(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "test key")
    runner = CliRunner()

    def hhkb(*arguments):
        return runner.invoke(main, ["--db", database_url, *arguments], catch_exceptions=False)

    tables = [*year_files(tmp_path, 2026), *(HHPPS_DIR / f"{kind}-2024.csv" for kind in ("hrg", "rev", "cbsa-wage-index"))]
    assert hhkb("load", *map(str, tables)).exit_code == 0
    claims = tmp_path / "agency.837i"
    assert hhkb("claims", "generate", "--periods", "5", "--seed", "1", "--year", "2024", "--out", str(claims)).exit_code == 0
    assert hhkb("claims", "load", str(claims)).exit_code == 0
    with open(claims, encoding="utf-8") as stream:
        claim_id = next(s.split("*")[1] for s in stream.read().split("~") if s.strip().startswith("CLM*"))
    assert hhkb("price", claim_id, "--rules", "2024").exit_code == 0
    for arguments in (("params", "2026-03-01"), ("price", claim_id, "--rules", "2026"),
                      ("impact", "--from", "2024", "--to", "2026", "--out", str(tmp_path / "out")),
                      ("diff", "hhpps", "2024", "2026")):
        result = hhkb(*arguments)
        assert result.exit_code == 1, arguments
        assert "CY2026 are unknown: rate_30_day_no_quality, labor_share" in result.stderr, arguments
        assert "hhkb load FILE.yaml" in result.stderr, arguments


# --- loading a catalogue file ----------------------------------------------------------------------


def test_a_catalogue_file_becomes_a_release_and_completes_the_year(engine, tmp_path):
    ingest.load_files(engine, year_files(tmp_path, 2026))
    path = write(tmp_path, "CMS-1828-F.yaml", CY2026_FILE)
    report = ingest.load_files(engine, [path])
    assert [s.already_loaded for s in report.stored] == [False]
    assert "1 entries" in report.stored[0].describe()
    [release] = catalogue_releases(engine)
    assert (release.file_name, release.size, release.file_format) == ("CMS-1828-F.yaml", path.stat().st_size, "yaml")
    assert len(release.sha256) == 64 and release.regulation == "CMS-1828-F"
    assert (release.effective_date, release.published_date) == (date(2026, 1, 1), date(2025, 12, 2))
    assert release.effective_date_basis.endswith("CMS-1828-F (line 8)")
    assert release.published_date_basis.endswith("CMS-1828-F (line 7)")
    with Session(engine) as session:
        assert session.get(CatalogueDocument, release.id).text == CY2026_FILE

    tables = tables_on(engine, date(2026, 3, 1))
    assert tables.rate_year.rule == "CMS-1828-F" and tables.rate_year.missing == ()
    assert tables.rate_year.labor_share.value == Decimal("0.749")
    parameters = tables.pricing_parameters("1FC11", quality_data_submitted=True, rural=False)
    claim = WORKED_CLAIM.__class__(**{**WORKED_CLAIM.__dict__, "from_date": date(2026, 3, 1),
                                      "through_date": date(2026, 3, 30), "admission_date": date(2026, 3, 1)})
    assert price_period(claim, parameters).period_payment == Decimal("2202.09")  # 1.0804 x 2,038.22

    again = ingest.load_files(engine, [path])
    assert [s.already_loaded for s in again.stored] == [True]
    assert len(catalogue_releases(engine)) == 1


def test_a_folder_load_recognises_a_catalogue_file(engine, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, "cy2026.yml", CY2026_FILE)
    write(folder, "readme.txt", "notes\n")
    report = ingest.load_files(engine, [folder])
    assert [s.release.source for s in report.stored] == [CATALOGUE_SOURCE]
    assert [s.path.name for s in report.skipped] == ["readme.txt"]


def test_a_copy_of_a_package_entry_changes_nothing(engine, tmp_path):
    package_text = DEFAULT_PATH.read_text(encoding="utf-8")
    start = package_text.index("  - id: CMS-1803-F\n")
    entry = package_text[start : package_text.index("  - id: ", start + 1)]
    path = write(tmp_path, "copy.yaml", "regulations:\n" + entry)
    ingest.load_files(engine, [path])
    assert [r.file_name for r in catalogue_releases(engine)] == ["copy.yaml"]
    with Session(engine) as session:
        catalogue = catalogue_of(session)
    assert catalogue.superseded == () and catalogue.rules == load_catalogue().rules


def test_a_superseding_entry_is_used_and_the_review_shows_the_difference_cited(engine, tmp_path):
    ingest.load_files(engine, year_files(tmp_path, 2025))
    entry = cy2025_entry("2057.36", extra="    supersedes: CMS-1803-F\n    note: the rate as corrected\n")
    ingest.load_files(engine, [write(tmp_path, "CMS-1803-F.yaml", entry)])
    tables = tables_on(engine, date(2025, 6, 1))
    assert tables.rate_year.rate_30_day.value == Decimal("2057.36")
    with Session(engine) as session:
        review = annual_review(session, catalogue_of(session), 2025)
    [change] = [c for c in review.changes if c.old_provenance.label.startswith("CMS-1803-F")]
    assert (change.change_type, change.key, change.old, change.new) == (
        "thirty_day_rate_changed", "thirty_day_rate", Decimal("2057.35"), Decimal("2057.36"))
    package_line = load_catalogue().get("CMS-1803-F").key_line("constants.rate_30_day")
    assert change.old_reference.startswith("89 FR 88354 (CMS-1803-F); CMS HH PPS pricer")
    assert change.old_reference.endswith(f"hhkb's catalogue, line {package_line}")
    assert change.new_reference.endswith("CMS-1803-F.yaml, line 12")
    assert any("superseded by CMS-1803-F" in note and "the rate as corrected" in note for note in review.notes)


# --- bad catalogue files: one error per mode, naming file, line and key; nothing written ----------


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (cy2025_entry("2057.99"), 10, "regulations[0].constants.rate_30_day",
         "CMS-1803-F is already in the catalogue (the package's catalogue"),
        (cy2025_entry("2057.35", document_id="CMS-9999-F"), 7, "regulations[0].effective",
         "takes effect on 2025-01-01, as CMS-1803-F"),
        (cy2025_entry("2057.99", extra="    supersedes: CMS-0001-F\n    note: x\n"), 9, "regulations[0].supersedes",
         "supersedes 'CMS-0001-F', which is not in the catalogue"),
        (cy2025_entry("2057.99", extra="    supersedes: CMS-1803-F\n"), 9, "regulations[0].note",
         "needs a note"),
        (cy2025_entry("2057.35", document_id="CMS-9999-F").replace("    published: 2024-11-07\n", "").replace(
            "2025-01-01", "2031-01-01"), 2, "regulations[0].published",
         "needs an entry with a published date"),
        (cy2025_entry("2057.35", extra="    corrects: CMS-0002-F\n", document_id="CMS-1803-CN").replace(
            "hh_pps_rule", "correction").split("    constants:")[0], 9, "regulations[0].corrects",
         "corrects 'CMS-0002-F', which is not in the catalogue"),
        (cy2025_entry("2057.35").replace("    citation: 89 FR 88354\n", "    citation: 89 FR 88354\n    citation: x\n"),
         6, "citation", "duplicate key 'citation' (first on line 5)"),
        (cy2025_entry("2057.35").replace('"0.749"', '"0,749"'), 12, "regulations[0].constants.labor_share.value",
         "not a decimal number"),
    ],
)
def test_bad_catalogue_file(engine, tmp_path, text, line, field, words):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(LoadError) as error:
        ingest.load_files(engine, [path])
    assert (error.value.path, error.value.line, error.value.field) == (str(path), line, field)
    assert words in error.value.message
    assert catalogue_releases(engine) == []


def test_a_second_file_that_contradicts_the_first_names_it(engine, tmp_path):
    entry = cy2025_entry("2057.36", extra="    supersedes: CMS-1803-F\n    note: first reading\n")
    ingest.load_files(engine, [write(tmp_path, "first.yaml", entry)])
    other = write(tmp_path, "second.yaml", cy2025_entry("2057.37"))
    with pytest.raises(LoadError) as error:
        ingest.load_files(engine, [other])
    assert "already in the catalogue (loaded from first.yaml, line 2)" in error.value.message
    assert (error.value.line, error.value.field) == (10, "regulations[0].constants.rate_30_day")
    assert [r.file_name for r in catalogue_releases(engine)] == ["first.yaml"]


# --- the merge itself (pure) -------------------------------------------------------------------------


def test_merge_replaces_a_superseded_entry_and_keeps_the_pair():
    package = load_catalogue()
    added = parse_catalogue(CY2026_FILE, "CMS-1828-F.yaml", check_references=False)
    merged = merge(package, added)
    assert merged.get("CMS-1828-F").origin == "CMS-1828-F.yaml"
    assert [(old.origin, new.origin) for old, new in merged.superseded] == [(package.path, "CMS-1828-F.yaml")]
    assert len(merged.rules) == len(package.rules)
    assert merge(merged, added) == merged  # the same entries again change nothing


def test_rules_and_releases_list_a_loaded_entry(database_url, tmp_path):
    notice = ("regulations:\n  - id: CMS-9000-N\n    kind: notice\n    title: A notice loaded for the test\n"
              "    citation: 91 FR 1\n    published: 2026-02-02\n    effective: 2026-03-01\n    confirmed: false\n")
    path = write(tmp_path, "notice.yaml", notice)
    runner = CliRunner()
    loaded = runner.invoke(main, ["--db", database_url, "load", str(path)])
    assert loaded.exit_code == 0, loaded.output
    assert "notice.yaml: release 1 (catalogue CMS-9000-N, effective 2026-03-01, published 2026-02-02): 1 entries" in loaded.output
    rules = runner.invoke(main, ["--db", database_url, "rules", "--kind", "notice"]).output
    assert "CMS-9000-N" in rules and "CMS-6069-N" in rules
    assert "notice.yaml" in runner.invoke(main, ["--db", database_url, "releases", "--source", "catalogue"]).output


def test_a_loaded_rule_dates_the_tables_loaded_after_it(engine, tmp_path):
    rule = ("regulations:\n  - id: CMS-9999-F\n    kind: hh_pps_rule\n    title: A CY 2030 rule for the test\n"
            "    citation: 94 FR 1\n    published: 2029-11-02\n    effective: 2030-01-01\n    confirmed: false\n"
            "    note: test figures\n    constants:\n") + constants_block(CY2026_FIGURES, "94 FR 1 (CMS-9999-F)")
    ingest.load_files(engine, [write(tmp_path, "CMS-9999-F.yaml", rule)])
    rows = (HHPPS_DIR / "hrg-2026.csv").read_text(encoding="utf-8").splitlines()
    table = write(tmp_path, "hrg-2030.csv", "\n".join([rows[0]] + [r.replace("20260101", "20300101") for r in rows[1:]]) + "\n")
    [summary] = ingest.load_files(engine, [table]).stored
    assert (summary.release.regulation, summary.release.published_date) == ("CMS-9999-F", date(2029, 11, 2))
    assert "CMS-9999-F (94 FR 1)" in summary.release.published_date_basis


def test_a_rule_file_dates_the_tables_of_the_same_load(engine, tmp_path):
    rule = ("regulations:\n  - id: CMS-9999-F\n    kind: hh_pps_rule\n    title: A CY 2030 rule for the test\n"
            "    citation: 94 FR 1\n    published: 2029-11-02\n    effective: 2030-01-01\n    confirmed: false\n"
            "    note: test figures\n    constants:\n") + constants_block(CY2026_FIGURES, "94 FR 1 (CMS-9999-F)")
    rows = (HHPPS_DIR / "hrg-2026.csv").read_text(encoding="utf-8").splitlines()
    table = write(tmp_path, "hrg-2030.csv", "\n".join([rows[0]] + [r.replace("20260101", "20300101") for r in rows[1:]]) + "\n")
    stored = ingest.load_files(engine, [table, write(tmp_path, "CMS-9999-F.yaml", rule)]).stored
    [summary] = [s for s in stored if s.release.source == "hhpps-hrg"]
    assert (summary.release.regulation, summary.release.published_date) == ("CMS-9999-F", date(2029, 11, 2))


def test_a_table_no_rule_dates_is_known_from_its_effective_date_never_the_load_day(engine, tmp_path):
    rows = (HHPPS_DIR / "hrg-2026.csv").read_text(encoding="utf-8").splitlines()
    table = write(tmp_path, "hrg-2031.csv", "\n".join([rows[0]] + [r.replace("20260101", "20310101") for r in rows[1:]]) + "\n")
    [summary] = ingest.load_files(engine, [table]).stored
    assert summary.release.published_date == date(2031, 1, 1) and summary.release.regulation is None
    assert "taken as known from its effective date" in summary.release.published_date_basis
