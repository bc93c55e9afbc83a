"""Hostile text in the data reaches every output as text: a claim id that is a spreadsheet formula,
a description with ``<script>`` and rich markup, through the findings, impact and change reports
(CSV, Markdown, HTML, JSON) and the terminal, on both databases."""

from __future__ import annotations

import csv
import io
import json
import re

import lxml.html
import pytest
from reports.safety import CSV_FORMULA_STARTS, csv_cell, csv_document, markdown_text, terminal_text
from tests.conftest import FIXTURES, HHPPS_DIR
from tests.test_cli import row_counts

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert(1)</script>"
MARKUP = "[kt] [v] [/x]"
TABLES = [str(HHPPS_DIR / f"{kind}-{year}.csv") for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2023, 2024)]
SAMPLE = FIXTURES / "hcpcs" / "sample_anweb.txt"
G0151_TEXT = b"Services performed by a qualified physical therapist in the home health or"


@pytest.mark.parametrize("value, written", [
    (FORMULA, "'" + FORMULA), ("+1+1", "'+1+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("  =1", "'  =1"), ("-2e5", "'-2e5"),
    ("-12.50", "-12.50"), ("+0.73%", "+0.73%"), ("2024-01-01", "2024-01-01"), ("G0151", "G0151"), (None, ""),
])
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted(value, written):
    assert csv_cell(value) == written


@pytest.mark.parametrize("value, written", [
    (SCRIPT, "\\<script\\>alert(1)\\</script\\>"), ("a | b", "a \\| b"), ("*bold* `code`", "\\*bold\\* \\`code\\`"),
    ("[link](x)", "\\[link\\](x)"), ("_em_", "\\_em\\_"), ("HCPC2019_CONTR_ANWEB.txt", "HCPC2019_CONTR_ANWEB.txt"),
    ("# title", "\\# title"), ("- item", "\\- item"), ("1. first", "1\\. first"), ("two\nlines", "two lines"),
    ("-12.50", "-12.50"), ("1.1009", "1.1009"), ("back\\slash", "back\\\\slash"),
])
def test_markdown_text_is_escaped(value, written):
    assert markdown_text(value) == written


def test_terminal_text_shows_control_characters():
    assert terminal_text("red\x1b[31m\x00 tab\tend\n") == "red\\x1b[31m\\x00 tab\tend\n"


def test_csv_document_round_trips_through_a_reader():
    text = csv_document(("claim_id", "amount"), [(FORMULA, "-12.50"), ("a,\"b\"", "3")])
    assert list(csv.reader(io.StringIO(text))) == [["claim_id", "amount"], ["'" + FORMULA, "-12.50"], ['a,"b"', "3"]]


# --- every report, through the command line, on both databases --------------------------------------


def hostile_hcpcs(path, text: bytes):
    """The sample HCPCS txt with G0151's first description line replaced (same width)."""
    data = SAMPLE.read_bytes()
    assert len(text) <= len(G0151_TEXT) and data.count(G0151_TEXT) == 1
    path.write_bytes(data.replace(G0151_TEXT, text.ljust(len(G0151_TEXT))))
    return path


def hostile_claims(path):
    """The two-claim CSV fixture with the first claim's id a spreadsheet formula."""
    rows = list(csv.reader(io.StringIO((FIXTURES / "claims" / "two-claims.csv").read_text())))
    first = rows[1][1]
    for row in rows[1:]:
        if row[1] == first:
            row[1] = FORMULA
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())
    return path


def formula_cells(path) -> list[str]:
    """Cells of a CSV file a spreadsheet would evaluate (not plain numbers)."""
    with open(path, newline="", encoding="utf-8") as stream:
        cells = [cell for row in csv.reader(stream) for cell in row]
    return [cell for cell in cells if cell.lstrip(" ").startswith(CSV_FORMULA_STARTS) and csv_cell(cell) != cell]


def assert_safe_report(folder, stem, *, must_hold: str, in_json: bool = True):
    """``must_hold``: the hostile text each rendering must carry, as text (the impact JSON lists no
    claims: ``in_json=False``)."""
    assert not formula_cells(folder / f"{stem}.csv")
    with open(folder / f"{stem}.csv", newline="", encoding="utf-8") as stream:
        assert any(cell.startswith("'" + must_hold) for row in csv.reader(stream) for cell in row)
    markdown = (folder / f"{stem}.md").read_text()
    assert markdown_text(must_hold) in markdown
    assert not re.search(r"(?<!\\)[<>]", markdown)  # every angle bracket escaped: no HTML tag
    html = (folder / f"{stem}.html").read_text()
    assert "<script" not in html and must_hold in lxml.html.fromstring(html).text_content()
    assert (must_hold in json.dumps(json.loads((folder / f"{stem}.json").read_text()), ensure_ascii=False)) == in_json


def test_claim_id_formula_in_findings_and_impact_reports(hhkb, tmp_path):
    hhkb("load", *TABLES)
    hhkb("claims", "load", str(hostile_claims(tmp_path / "claims.csv")))
    before = row_counts(hhkb.url)
    impact = hhkb("impact", "--from", "2023", "--to", "2024", "--out", str(tmp_path / "impact"))
    assert "2 claims priced" in impact.stdout
    assert_safe_report(tmp_path / "impact", "impact", must_hold=FORMULA, in_json=False)
    check = hhkb("check", "--agency", "9000000155", "--out", str(tmp_path / "findings"), status=1)
    assert "claims checked" in check.stdout
    assert_safe_report(tmp_path / "findings", "findings", must_hold=FORMULA)
    assert FORMULA not in hhkb("check", "--agency", "9000000155", "--format", "csv", status=1).stdout.replace(
        "'" + FORMULA, "")
    assert row_counts(hhkb.url) == before


def test_description_with_a_formula_script_and_markup_in_diff_and_terminal(hhkb, tmp_path):
    hhkb("load", "--effective", "2019-07-01", str(SAMPLE))
    hostile = (FORMULA + " " + SCRIPT + " " + MARKUP).encode("cp1252")
    hhkb("load", "--effective", "2019-10-01", str(hostile_hcpcs(tmp_path / "hostile.txt", hostile)))
    before = row_counts(hhkb.url)
    hhkb("diff", "hcpcs", "2019 JUL", "2019 OCT", "--out", str(tmp_path / "diff"))
    (report,) = sorted((tmp_path / "diff").glob("*.csv"))
    assert_safe_report(tmp_path / "diff", report.stem, must_hold=FORMULA + " " + SCRIPT + " " + MARKUP)
    assert json.loads((tmp_path / "diff" / f"{report.stem}.json").read_text())["total"] >= 1

    code = hhkb("code", "G0151").stdout
    assert f"{FORMULA} {SCRIPT} {MARKUP}" in code  # the markup printed as the text it is
    search = hhkb("search", "calc").stdout
    assert "G0151" in search
    hipps = hhkb("hipps", "[/x]", status=1)
    assert hipps.stdout.startswith("[/X]\n") and "[/X] is in no loaded case-mix table" in hipps.stderr
    assert row_counts(hhkb.url) == before
