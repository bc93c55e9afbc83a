"""Pending updates and what-if scenarios loaded with ``hhkb load FILE.yaml``, on SQLite and PostgreSQL:
each file a release with its provenance and its text, joining the package's entries; loading it
again changes nothing; a bad file names file, line and key and writes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from kb import ingest
from kb.cli import main
from kb.models import CatalogueDocument, Release
from kb.store import PENDING_SOURCE, SCENARIO_SOURCE, catalogue_of, pending_of, scenario_texts
from loaders.errors import LoadError
from regulations.pending import load_pending
from regulations.scenario import find_scenario
from tests.conftest import HHPPS_DIR

PENDING_FILE = """# a request filed after the package's catalogue was written
pending:
  - id: HCPCS-G0299-wording
    kind: hcpcs_code_request
    title: Reword G0299
    subject: {codes: [G0299]}
    would_change: the long description
    effective: 2026-01-01
    citation: a coding-cycle summary
    confirmed: false
    status:
      - {status: requested, date: 2025-01-06}
      - {status: discussed, date: 2025-05-14}
"""

#: R0070's request, later: the package's two statuses, then an approval.
R0070_LATER = """pending:
  - id: HCPCS-R0070-portable-imaging
    kind: hcpcs_code_request
    title: Revise R0070 from portable x-ray to portable imaging transportation
    applicant: DispatchHealth Imaging
    subject: {codes: [R0070]}
    would_change: portable imaging
    citation: a later coding cycle
    confirmed: false
    status:
      - {status: requested, date: 2023-01-01, citation: DOMAIN.md section 2 (a 2023 request), note: date not read; the year only}
      - {status: deferred, date: 2023-12-31, citation: DOMAIN.md section 2, note: CMS deferred the request to a later coding cycle; date not read}
      - {status: approved, date: 2024-11-15, citation: a later coding cycle}
"""

SCENARIO_FILE = """scenario:
  id: CY2024-rate-2000
  title: the CY2024 rules with a 30-day rate of 2,000.00
  base_year: 2024
  published: 2023-07-15
  citation: an agency's own assumption
  confirmed: false
  constants:
    rate_30_day: {value: "2000.00", citation: assumed, confirmed: false}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def releases(engine, source: str) -> list[Release]:
    with Session(engine) as session:
        return list(session.scalars(sa.select(Release).where(Release.source == source).order_by(Release.id)))


def test_a_pending_file_becomes_a_release_and_joins_the_package(engine, tmp_path):
    path = write(tmp_path, "requests.yaml", PENDING_FILE)
    report = ingest.load_files(engine, [path])
    assert [(s.release.source, s.already_loaded) for s in report.stored] == [(PENDING_SOURCE, False)]
    assert report.stored[0].describe().endswith("published 2025-05-14): 1 updates")
    [release] = releases(engine, PENDING_SOURCE)
    assert (release.file_name, release.file_format, release.label) == ("requests.yaml", "yaml", "HCPCS-G0299-wording")
    assert (release.effective_date, release.published_date) == (date(2026, 1, 1), date(2025, 5, 14))
    assert "HCPCS-G0299-wording (line 3)" in release.effective_date_basis
    assert release.published_date_basis.startswith("the latest status date")
    with Session(engine) as session:
        assert session.get(CatalogueDocument, release.id).text == PENDING_FILE
        updates = {u.entry_id: u for u in pending_of(session)}
        assert catalogue_of(session).rules  # a pending text is never read as a catalogue
    assert set(updates) == {u.entry_id for u in load_pending()} | {"HCPCS-G0299-wording"}
    assert updates["HCPCS-G0299-wording"].pending_on(date(2025, 6, 1))

    again = ingest.load_files(engine, [path])
    assert [s.already_loaded for s in again.stored] == [True]
    assert len(releases(engine, PENDING_SOURCE)) == 1

    url = str(engine.url.render_as_string(hide_password=False))
    listed = CliRunner().invoke(main, ["--db", url, "pending", "--as-of", "2025-06-01"])
    assert listed.exit_code == 0 and "HCPCS-G0299-wording (hcpcs_code_request, pending)" in listed.output


def test_a_later_status_of_a_known_request_takes_its_place(engine, tmp_path):
    ingest.load_files(engine, [write(tmp_path, "r0070.yaml", R0070_LATER)])
    with Session(engine) as session:
        request = next(u for u in pending_of(session) if u.entry_id == "HCPCS-R0070-portable-imaging")
    assert [s.status for s in request.history] == ["requested", "deferred", "approved"]
    assert request.pending_on(date(2024, 1, 1)) and not request.pending_on(date(2025, 1, 1))


def test_a_scenario_file_becomes_a_release_and_is_priced_by_its_id(engine, tmp_path):
    path = write(tmp_path, "rate-2000.yaml", SCENARIO_FILE)
    [summary] = ingest.load_files(engine, [path]).stored
    assert summary.describe().endswith("published 2023-07-15): 1 constants")
    [release] = releases(engine, SCENARIO_SOURCE)
    assert (release.label, release.effective_date, release.published_date) == (
        "CY2024-rate-2000", date(2024, 1, 1), date(2023, 7, 15))
    assert [s.already_loaded for s in ingest.load_files(engine, [path]).stored] == [True]
    with Session(engine) as session:
        texts = scenario_texts(session)
    assert texts == {"CY2024-rate-2000": SCENARIO_FILE}
    scenario = find_scenario("CY2024-rate-2000", texts)
    assert scenario.constants["rate_30_day"].value == 2000 and scenario.base_year == 2024

    ingest.load_files(engine, [HHPPS_DIR / f"{kind}-{year}.csv" for kind in ("hrg", "rev", "cbsa-wage-index")
                               for year in (2023, 2024)])
    url = str(engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["--db", url, "impact", "--from", "2023", "--to", "CY2024-rate-2000",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "what-if: CY2024-rate-2000, not in force" in result.output


def test_a_folder_load_recognises_pending_and_scenario_files(engine, tmp_path):
    folder = tmp_path / "updates"
    folder.mkdir()
    write(folder, "a.yaml", PENDING_FILE)
    write(folder, "b.yml", SCENARIO_FILE)
    report = ingest.load_files(engine, [folder])
    assert sorted(s.release.source for s in report.stored) == [PENDING_SOURCE, SCENARIO_SOURCE]


@pytest.mark.parametrize(("name", "text", "line", "field", "words"), [
    ("colour.yaml", PENDING_FILE.replace("    title: Reword G0299\n", "    title: Reword G0299\n    colour: red\n"),
     6, "pending[0].colour", "unknown key"),
    ("history.yaml", R0070_LATER.replace("status: deferred, date: 2023-12-31", "status: denied, date: 2023-12-31"),
     2, "pending[0].id", "may only add statuses after the known ones"),
    ("taken.yaml", SCENARIO_FILE.replace("id: CY2024-rate-2000", "id: CMS-1780-P"), 2, "scenario.id",
     "taken by the package's CMS-1780-P.yaml"),
    ("undated.yaml", SCENARIO_FILE.replace("  published: 2023-07-15\n", ""), 2, "scenario.published",
     "needs 'published'"),
    ("key.yaml", SCENARIO_FILE.replace("  confirmed: false\n  constants", "  confirmed: false\n  colour: red\n  constants"),
     8, "scenario.colour", "unknown key"),
])
def test_a_bad_pending_or_scenario_file_names_file_line_and_key(engine, tmp_path, name, text, line, field, words):
    path = write(tmp_path, name, text)
    with pytest.raises(LoadError) as error:
        ingest.load_files(engine, [path])
    assert (error.value.path, error.value.line, error.value.field) == (str(path), line, field)
    assert words in error.value.message
    assert releases(engine, PENDING_SOURCE) == releases(engine, SCENARIO_SOURCE) == []


def test_a_scenario_id_loaded_twice_names_the_first(engine, tmp_path):
    ingest.load_files(engine, [write(tmp_path, "first.yaml", SCENARIO_FILE)])
    other = write(tmp_path, "second.yaml", SCENARIO_FILE.replace("2000.00", "2001.00"))
    with pytest.raises(LoadError) as error:
        ingest.load_files(engine, [other])
    assert (error.value.line, error.value.field) == (2, "scenario.id")
    assert "taken by a scenario file loaded before" in error.value.message
    assert len(releases(engine, SCENARIO_SOURCE)) == 1


def test_the_code_answer_carries_its_pending_requests(engine, tmp_path):
    ingest.load_files(engine, [*sorted((HHPPS_DIR.parent / "hcpcs" / "2023-01").iterdir())])
    url = str(engine.url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(main, ["--db", url, "code", "R0070", "--json"])
    assert shown.exit_code == 0, shown.output
    [request] = json.loads(shown.output)["pending"]
    assert (request["entry_id"], request["applicant"], request["pending"]) == (
        "HCPCS-R0070-portable-imaging", "DispatchHealth Imaging", True)
    assert [(s["status"], s["date"]) for s in request["history"]] == [("requested", "2023-01-01"),
                                                                       ("deferred", "2023-12-31")]
    before = json.loads(CliRunner().invoke(main, ["--db", url, "code", "R0070", "--json",
                                                  "--known-on", "2023-06-01"]).output)["pending"]
    assert [s["status"] for s in before[0]["history"]] == ["requested"]
    assert json.loads(CliRunner().invoke(main, ["--db", url, "code", "G0151", "--json"]).output)["pending"] == []
    ingest.load_files(engine, [write(tmp_path, "r0070.yaml", R0070_LATER)])
    later = json.loads(CliRunner().invoke(main, ["--db", url, "code", "R0070", "--json"]).output)["pending"]
    assert later[0]["pending"] is False and later[0]["history"][-1]["status"] == "approved"
    text = CliRunner().invoke(main, ["--db", url, "code", "R0070"]).output
    assert "pending: HCPCS-R0070-portable-imaging" in text and "approved 2024-11-15" in text
