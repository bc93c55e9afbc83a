"""The command line, as a user runs it: output, exit status, and what a bad file leaves behind."""

from __future__ import annotations

import json
import zipfile

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import html

from kb.cli import main
from tests.conftest import HCPCS_DIR, HHPPS_DIR


def run(database_url, *args, ok=True):
    result = CliRunner().invoke(main, ["--db", database_url, *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def loaded(database_url):
    run(database_url, "load", str(HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip"),
        str(HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip"), str(HHPPS_DIR))
    return database_url


def row_counts(database_url) -> dict[str, int]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
        counts = {n: connection.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}
    engine.dispose()
    return counts


def test_load_reports_each_file_and_a_second_load_changes_nothing(loaded):
    before = row_counts(loaded)
    again = run(loaded, "load", str(HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip"))
    assert "already loaded" in again.output and "nothing changed" in again.output
    assert row_counts(loaded) == before


def test_releases_lists_sources_dates_and_counts(loaded):
    out = run(loaded, "releases").output
    assert "2019 annual" in out and "6,800" in out and "hhpps-hrg" in out


def test_code_answers_by_date_and_as_json(loaded):
    assert "was in effect on 2015-06-01" in run(loaded, "code", "G0154", "--as-of", "2015-06-01").output
    payload = json.loads(run(loaded, "code", "g0154", "--as-of", "2017-06-01", "--json").output)
    assert payload["version_in_force"] is None
    assert "terminated 2016-02-29" in payload["answer"]
    assert payload["versions"][0]["fields"]["termination_date"] == "2016-02-29"
    assert run(loaded, "code", "ZZZZZ", ok=False).exit_code == 1


def test_search_finds_home_health_codes(loaded):
    assert "G0151" in run(loaded, "search", "physical therapist home health").output


def test_params_shows_the_rule_year_in_force(loaded):
    out = run(loaded, "params", "2024-03-01", "--json").output
    payload = json.loads(out)
    assert payload["rule"] == "CMS-1780-F"
    assert payload["constants"]["rate_30_day"]["value"] == "2038.13"
    assert payload["constants"]["labor_share"]["value"] == "0.749"
    assert payload["tables"]["hrg"]["file"] == "hrg-2024.csv"
    assert json.loads(run(loaded, "params", "2023-12-31", "--json").output)["constants"]["fdl_ratio"]["value"] == "0.35"
    assert "550.30" in run(loaded, "params", "2024-03-01").output


def test_hipps_and_wage_index(loaded):
    out = run(loaded, "hipps", "1FC11").output
    assert "1.1009" in out and "1.0929" in out and "hrg-2024.csv" in out
    refused = run(loaded, "wage-index", "49700", "--as-of", "2023-05-01", ok=False)
    assert refused.exit_code == 1 and "listed more than once" in refused.output
    assert "1.4394" in run(loaded, "wage-index", "49700", "--as-of", "2023-05-01", "--policy", "first").output


def test_rules_lists_the_catalogue(loaded):
    out = run(loaded, "rules").output
    assert "CMS-1780-F" in out and "CMS-6069-N" in out


def test_diff_and_review_write_every_format(loaded, tmp_path):
    run(loaded, "diff", "hcpcs", "2018", "2019", "--out", str(tmp_path))
    page = html.parse(str(tmp_path / "hcpcs-2018-2019.html")).getroot()
    assert page.xpath("count(//tr[contains(@class, 'change')])") == 619  # every 2018 -> 2019 change (none of them watched)
    hhpps = json.loads(run(loaded, "diff", "hhpps", "2023", "2024", "--format", "json").output)
    types = {}
    for change in hhpps["changes"] if isinstance(hhpps, dict) else hhpps:
        types[change["change_type"]] = types.get(change["change_type"], 0) + 1
    assert types["lupa_threshold_changed"] == 41
    run(loaded, "review", "2024", "--out", str(tmp_path))
    review = html.parse(str(tmp_path / "review-2024.html")).getroot()
    assert review.xpath("//section[@id='documents']//td[text()='CMS-1780-F']")
    assert (tmp_path / "review-2024.csv").read_text().count("\n") == 1 + 1023  # the header and the README's 1023


def test_unknown_release_is_a_clear_error(loaded):
    result = run(loaded, "diff", "hcpcs", "2016", "2019", ok=False)
    assert result.exit_code == 1 and "no HCPCS release matches '2016'" in result.output


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"", "the file is empty"),
    ("notes.txt", b"this is not a CMS file\r\n", "not a file hhkb knows"),
])
def test_a_bad_file_is_one_line_and_changes_nothing(loaded, tmp_path, name, content, message):
    before = row_counts(loaded)
    path = tmp_path / name
    path.write_bytes(content)
    result = run(loaded, "load", str(path), ok=False)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0]
    assert row_counts(loaded) == before


def test_a_truncated_zip_among_good_files_leaves_the_earlier_ones_loaded(database_url, tmp_path):
    good = HCPCS_DIR / "2017-Alpha-Numeric-HCPCS-File.zip"
    truncated = tmp_path / "2018-Alpha-Numeric-HCPCS-File.zip"
    truncated.write_bytes((HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip").read_bytes()[:50_000])
    assert zipfile.is_zipfile(good)
    run(database_url, "load", str(good))
    before = row_counts(database_url)
    result = run(database_url, "load", str(truncated), ok=False)
    assert result.exit_code == 2 and str(truncated) in result.output
    assert row_counts(database_url) == before


def test_db_upgrade_is_idempotent(database_url):
    assert "schema at revision" in run(database_url, "db", "upgrade").output


def test_a_folder_of_everything_loads_in_order_with_corrections(database_url, tmp_path):
    from tests.conftest import CMS

    out = run(database_url, "load", str(CMS)).output
    assert "2018 corrections V4" in out and "0 not applied" in out
    assert "documentation, not data: 3 file(s)" in out
    assert "2017-Record-Layout.zip: CMS record layout" in out
    known_before = json.loads(run(database_url, "code", "G0279", "--as-of", "2018-03-01",
                                  "--known-on", "2017-12-01", "--json").output)
    known_after = json.loads(run(database_url, "code", "G0279", "--as-of", "2018-03-01",
                                 "--known-on", "2018-01-31", "--json").output)
    number = {v["number"]: v for v in known_after["versions"]}
    before_text = number[known_before["version_in_force"]]["fields"]["long_description"]
    after_text = number[known_after["version_in_force"]]["fields"]["long_description"]
    assert before_text != after_text
    corrected = json.loads(run(database_url, "diff", "knowledge", "--as-of", "2018-03-01", "--known-before",
                               "2017-12-21", "--known-after", "2018-01-31", "--format", "json").output)
    keys = {change["key"] for change in corrected["changes"]}
    assert {"G0279", "G9868", "G9869", "G9870", "G9637", "G9638"} <= keys
    run(database_url, "review", "2018", "--out", str(tmp_path))
    rows = (tmp_path / "review-2018.csv").read_text()
    assert "hcpcs-corrections" in rows and "2018 corrections V1" in rows


def test_check_finds_a_discontinued_code_and_exits_for_pipelines(loaded, tmp_path, monkeypatch):
    import dataclasses
    from datetime import date
    from decimal import Decimal

    from kb.sample_agency import AgencyProfile, generate_claims
    from loaders.claim_record import ClaimLine
    from loaders.claims_csv import write_claims_csv

    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "a test secret")
    profile = AgencyProfile(agency_id="9000000001", state="CA", cbsa="31084", fips_county="06037", periods=12,
                            telehealth_share=0.0, missing_review_share=0.0)
    claims = generate_claims(profile, year=2019, seed=7)
    clean = tmp_path / "clean.csv"
    with clean.open("w", newline="") as stream:
        write_claims_csv(claims, stream)
    result = run(loaded, "check", str(clean), "--fail-at", "error", ok=False)
    assert result.exit_code == 0, result.output
    assert "12 claims checked" in result.output

    first = claims[0]
    day = first.period_from
    bad_line = ClaimLine(line_number=len(first.lines) + 1, revenue_code="0551", hcpcs="G0154", hipps=None,
                         modifiers=(), units=Decimal("4"), charge=Decimal("100.00"), service_date=day)
    faulty = tmp_path / "faulty.csv"
    with faulty.open("w", newline="") as stream:
        write_claims_csv([dataclasses.replace(first, lines=first.lines + (bad_line,))], stream)
    result = run(loaded, "check", str(faulty), "--out", str(tmp_path / "report"), ok=False)
    assert result.exit_code == 1
    assert "hcpcs-active-on-line-date" in result.output
    page = html.parse(str(tmp_path / "report" / "findings.html")).getroot()
    assert "G0154" in page.text_content()
    assert date(2019, 1, 1) <= day


def test_fetch_from_a_mirror_folder_then_load(database_url, tmp_path, monkeypatch):
    from tests.conftest import SHARED

    monkeypatch.setenv("HHKB_CACHE", str(tmp_path / "cache"))
    out = run(database_url, "fetch", "hhpps-2024", "--mirror", str(SHARED), "--dest", str(tmp_path / "data")).output
    assert "hhpps-2024" in out
    loaded = run(database_url, "load", str(tmp_path / "data" / "cms" / "hhpps")).output
    assert "hrg-2024.csv" in loaded
    assert "hhpps-2024" in run(database_url, "fetch", "--list", "x").output


def test_check_an_agency_loaded_from_an_837i(loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "a test secret")
    claims_file = tmp_path / "agency.837i"
    run(loaded, "claims", "generate", "--periods", "20", "--seed", "3", "--year", "2023", "--out", str(claims_file))
    run(loaded, "claims", "load", str(claims_file))
    from_file = run(loaded, "check", str(claims_file), "--format", "json", ok=False)
    stored = run(loaded, "check", "--agency", "9000000015", "--format", "json", ok=False)
    assert from_file.exit_code == stored.exit_code
    findings = lambda result: sorted((f["claim_id"], f["rule_id"], f["line_number"])  # noqa: E731
                                     for f in json.loads(result.output)["findings"])
    assert findings(stored) == findings(from_file)
    assert json.loads(stored.output)["claims_checked"] == 20


# --- folder loads: what was skipped and why, documentation named, --strict ----------------------


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "cms"
    folder.mkdir()
    (folder / "hrg-2024.csv").write_bytes((HHPPS_DIR / "hrg-2024.csv").read_bytes())
    header, first = (HHPPS_DIR / "rev-2024.csv").read_text().splitlines()[:2]
    cut = header.split(",").index("ruralUnitDollarRate")
    (folder / "rates.csv").write_text(",".join(c for i, c in enumerate(header.split(",")) if i != cut) + "\n"
                                      + ",".join(c for i, c in enumerate(first.split(",")) if i != cut) + "\n")
    (folder / "notes.csv").write_text("subject,remark\nx,y\n")
    (folder / "empty.csv").write_bytes(b"")
    with zipfile.ZipFile(folder / "2019-HCPCS-Record-Layout.zip", "w") as archive:
        archive.writestr("HCPCS2019_recordlayout.txt", "\n  CMS RIF REPORT\n  AS OF: 09/12/2018\n")
    (folder / "HCPC2019_README.txt").write_text("The 2019 HCPCS file.\n")
    return folder


def test_a_folder_load_lists_each_skipped_file_with_its_reason(database_url, mixed_folder):
    out = run(database_url, "load", str(mixed_folder)).output
    lines = out.splitlines()
    assert any(line.startswith("hrg-2024.csv: release") for line in lines)
    documentation = lines.index("documentation, not data: 2 file(s)")
    assert sorted(lines[documentation + 1:documentation + 3]) == [
        f"  {mixed_folder / '2019-HCPCS-Record-Layout.zip'}: CMS record layout",
        f"  {mixed_folder / 'HCPC2019_README.txt'}: CMS readme",
    ]
    skipped = lines.index("skipped (--strict refuses a load that skips files): 3 file(s)")
    assert sorted(lines[skipped + 1:]) == [
        f"  {mixed_folder / 'empty.csv'}: the file is empty",
        f"  {mixed_folder / 'notes.csv'}: not a source hhkb loads",
        f"  {mixed_folder / 'rates.csv'}: looks like an HH PPS rev table but lacks column 'ruralUnitDollarRate'",
    ]


def test_strict_refuses_a_folder_with_a_skipped_file_and_stores_nothing(database_url, mixed_folder):
    before = row_counts(database_url)
    result = run(database_url, "load", "--strict", str(mixed_folder), ok=False)
    assert result.exit_code == 2
    assert "--strict refuses skipped files; 2 more skipped" in result.output
    assert row_counts(database_url) == before
    for name in ("rates.csv", "notes.csv", "empty.csv"):
        (mixed_folder / name).unlink()
    out = run(database_url, "load", "--strict", str(mixed_folder)).output  # documentation alone is no refusal
    assert "hrg-2024.csv: release" in out and "CMS readme" in out


def test_a_named_table_that_lacks_a_column_is_an_error_naming_it(database_url, mixed_folder):
    result = run(database_url, "load", str(mixed_folder / "rates.csv"), ok=False)
    assert result.exit_code == 2
    assert "rates.csv, line 1, field ruralUnitDollarRate: looks like an HH PPS rev table" in result.output
