"""CMS's own change reports: the reader, and our diff reconciled with them (2017->2018, 2018->2019).

CMS ships in each annual zip a report of what changed since the previous release, one action per
code. Our diff compares the two annual files field by field. The reconciliation asserts, for
every code CMS marks A, B, C, D, S or P, that our diff has the matching change; where it does not,
and where our diff finds changes on codes CMS marks N, the codes are listed here with the reason,
and each reason is checked against the data (the release files and CMS's corrections).
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from kb.diff import Change, Provenance, apply_changes, diff_hcpcs
from loaders.errors import LoadError
from loaders.hcpcs import read_hcpcs
from loaders.hcpcs_changes import (
    action_code_for,
    change_report_members,
    parse_change_report_prn,
    parse_change_report_xlsx,
    read_hcpcs_changes,
)
from loaders.hcpcs_corrections import read_corrections

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HCPCS_DIR = SHARED / "cms" / "hcpcs"


def release_zip(year: int) -> Path:
    return HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip"


# --- the reader on the real reports ------------------------------------------------------------

# Rows and actions of each annual report, as counted in CMS's workbooks.
REPORT_COUNTS = {
    2017: {"A": 278, "B": 1, "C": 124, "D": 147, "F": 1, "N": 5902, "P": 38, "R": 1, "S": 2, "T": 4},
    2018: {"A": 152, "C": 50, "D": 40, "F": 2, "N": 6231, "P": 64, "S": 19},
    2019: {"A": 228, "B": 1, "C": 94, "D": 49, "F": 1, "N": 6372, "P": 47, "S": 8},
}


@pytest.mark.parametrize("year", sorted(REPORT_COUNTS))
def test_every_edition_of_a_report_gives_the_same_rows(year):
    with zipfile.ZipFile(release_zip(year)) as archive:
        members = change_report_members(archive.namelist())
    assert members[0].endswith(".xlsx") and len(members) == 3  # the workbook, then the two .prn files
    editions = [read_hcpcs_changes(release_zip(year), member=member) for member in members]
    editions.append(read_hcpcs_changes(release_zip(year), sheet="Changes by Action Code"))
    workbook = editions[0]
    assert dict(workbook.action_counts()) == REPORT_COUNTS[year]
    assert workbook.path.startswith(f"{release_zip(year)}!") and workbook.conflicts == ()
    for edition in editions[1:]:
        assert sorted((r.code, r.action_code) for r in edition.rows) == sorted((r.code, r.action_code) for r in workbook.rows)


def test_2019_report_carries_descriptions_and_the_prn_cuts_them():
    workbook = read_hcpcs_changes(release_zip(2019)).by_code()
    printed = read_hcpcs_changes(release_zip(2019), member="Changes_by_HCPCSCode.prn").by_code()
    assert workbook["G0151"].short_description == "Hhcp-serv of pt,ea 15 min"
    assert workbook["QE"].change_description == "Long Description Change"
    assert printed["QE"].change_description == "Long Description Chang" and printed["QE"].action_code == "C"
    assert workbook["A5514"].long_description.startswith(printed["A5514"].long_description)
    assert len(workbook["A5514"].long_description) > len(printed["A5514"].long_description)
    assert read_hcpcs_changes(release_zip(2018)).by_code()["G0151"].short_description is None


def test_quarterly_report_with_a_note_above_the_header_and_a_code_listed_twice():
    by_code = read_hcpcs_changes(HCPCS_DIR / "2020-07" / "trans_alpha.xlsx")
    assert by_code.by_code()["CS"].action_code == "C"  # "Long/Short Description Change"
    by_action = read_hcpcs_changes(HCPCS_DIR / "2020-07" / "trans_alpha.xlsx", sheet="Changes by Action Code")
    assert by_action.conflicts == ("CS",)
    with pytest.raises(LoadError) as raised:
        by_action.by_code()
    assert "Changes by Action Code" in str(raised.value) and raised.value.field == "type_of_change"
    assert "code CS is listed twice" in str(raised.value) and raised.value.line is not None


def test_wordings_and_cut_wordings_map_to_action_codes():
    assert [action_code_for(text) for text in ("ADD", "No change", "Coverage and Long Desc", "Short Description Chan",
                                               "Misc Change (TOS, BETOS)", "Re-activated", "Change", "Renamed")] == [
        "A", "N", "B", "S", "T", "R", None, None]


# --- the reader on bad input: one case per failure mode -----------------------------------------


def xlsx(rows: list[list[str]], sheet: str = "Changes by HCPCS Code") -> bytes:
    """A minimal workbook with inline strings (enough for the reader)."""
    def cell(ref: str, text: str) -> str:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escaped}</t></is></c>'

    body = "".join(
        f'<row r="{n}">' + "".join(cell(f"{'ABCD'[i]}{n}", text) for i, text in enumerate(row) if text) + "</row>"
        for n, row in enumerate(rows, 1)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"))
        package.writestr("_rels/.rels", (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"))
        package.writestr("xl/workbook.xml", (
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        package.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"))
        package.writestr("xl/worksheets/sheet1.xml", (
            '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{body}</sheetData></worksheet>"))
    return out.getvalue()


PRN_HEADER = b"HCPCS/Modifier Code Type of Change\r\n"


def test_small_prn_and_workbook_read():
    prn = parse_change_report_prn(PRN_HEADER + b"   G0151            No Change\r\n\r\nG0493  ADD\r\n", "t.prn")
    assert [(r.code, r.action_code, r.source_line) for r in prn.rows] == [("G0151", "N", 2), ("G0493", "A", 4)]
    book = parse_change_report_xlsx(xlsx([["HCPCS/MOD", "TYPE OF CHANGE"], ["   QQ", "ADD"]]), "t.xlsx")
    assert [(r.code, r.action_code, r.source_line) for r in book.rows] == [("QQ", "A", 2)]


@pytest.mark.parametrize(
    ("data", "line", "field", "message"),
    [
        (PRN_HEADER + b"G0151  Renamed\r\n", 2, "type_of_change", "unknown type of change 'Renamed' for code G0151"),
        (PRN_HEADER + b"G01    ADD\r\n", 2, "code", "'G01' is not an HCPCS code"),
        (PRN_HEADER + b"G0151\r\n", 2, "type_of_change", "no type of change"),
        (b"Report of changes\r\nG0151 ADD\r\n", 1, None, "no header line starting 'HCPC'"),
        (b" HCPCS/MOD  TYPE OF CHANGE  SHORT DESCRIPTION\r\n", 1, "header", "short description heading without a long one"),
    ],
    ids=["unknown-wording", "bad-code", "no-type", "no-header", "half-header"],
)
def test_bad_prn_names_file_line_and_field(data, line, field, message):
    with pytest.raises(LoadError) as raised:
        parse_change_report_prn(data, "bad.prn")
    error = raised.value
    assert (error.path, error.line, error.field) == ("bad.prn", line, field)
    assert message in str(error) and str(error).startswith("bad.prn, line")


@pytest.mark.parametrize(
    ("rows", "sheet", "line", "field", "message"),
    [
        ([["HCPC", "ACTION CD"], ["", "ADD"]], "Changes by HCPC", 2, "code", "type of change 'ADD' but no code"),
        ([["HCPC", "ACTION CD"], ["G0151", "Moved"]], "Changes by HCPC", 2, "type_of_change", "unknown type of change"),
        ([["Note"], ["G0151", "ADD"]], "Changes by HCPC", 1, None, "no header row"),
        ([["HCPC", "ACTION CD"]], "Sheet1", None, "sheet", "no 'Changes by HCPC...' sheet (sheets: Sheet1)"),
    ],
    ids=["no-code", "unknown-wording", "no-header", "no-sheet"],
)
def test_bad_workbook_names_file_row_and_field(rows, sheet, line, field, message):
    with pytest.raises(LoadError) as raised:
        parse_change_report_xlsx(xlsx(rows, sheet), "bad.xlsx")
    error = raised.value
    assert error.path.startswith("bad.xlsx") and (error.line, error.field) == (line, field)
    assert message in str(error)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(LoadError, match="not a readable workbook") as raised:
        parse_change_report_xlsx(b"not a workbook", "bad.xlsx")
    assert raised.value.path == "bad.xlsx"
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.txt", "nothing here")
    with pytest.raises(LoadError, match="holds no HCPCS change report") as raised:
        read_hcpcs_changes(empty)
    assert raised.value.path == str(empty)
    with pytest.raises(LoadError, match="no member 'x.prn'"):
        read_hcpcs_changes(release_zip(2019), member="x.prn")
    with pytest.raises(LoadError, match="cannot read"):
        read_hcpcs_changes(tmp_path / "missing.prn")


# --- reconciliation -----------------------------------------------------------------------------

PAYMENT_FIELDS = frozenset({
    "pricing_indicators", "multiple_pricing_indicator", "asc_group", "asc_effective_date",
    "opps_group", "opps_payment_indicator", "opps_effective_date",
})

QUARTERLY_ADDED_AND_ENDED = (
    "added by a quarterly update after the older annual file and terminated before the newer one: "
    "new to the annual file and already terminated, so our diff says added (with its termination date)"
)
ADDED_BY_QUARTERLY_UPDATE = (
    "not in the older annual file (added by the April 2018 quarterly update): CMS's action is relative "
    "to that update, our diff says added"
)
CODE_REUSED = "code reused with a new meaning: in the older file with another description and added date"
ALREADY_IN_OLDER_FILE = (
    "already in the older annual file as shipped, identical: that file carries codes of later quarterly "
    "updates, CMS's add is relative to its first edition"
)
CORRECTED_AFTER_RELEASE = (
    "changed by CMS's corrections to the older release, published after its annual file: CMS's report "
    "compares with the corrected release and says no change"
)
SILENT_EDIT = (
    "changed in the file with no action code and no published correction (spelling fixes, type of "
    "service, lab certifications): CMS's report says no change"
)

# Codes CMS marks A/B/C/D/S/P for which our diff has not the matching change, with why.
UNMATCHED: dict[int, dict[str, dict[str, str]]] = {
    2018: {
        "D": dict.fromkeys(
            ("C9484", "C9485", "C9486", "C9487", "C9489", "C9490", "C9491", "C9494",
             "Q9984", "Q9985", "Q9986", "Q9987", "Q9988", "Q9989"), QUARTERLY_ADDED_AND_ENDED),
    },
    2019: {
        "A": {"G9890": CODE_REUSED, "G9891": CODE_REUSED, "QQ": ALREADY_IN_OLDER_FILE, "VM": ALREADY_IN_OLDER_FILE},
        "C": {"Q2041": ADDED_BY_QUARTERLY_UPDATE},
        "D": dict.fromkeys(
            ("C9030", "C9031", "C9032", "C9033", "C9463", "C9464", "C9465", "C9466", "C9467", "C9468",
             "C9469", "C9750", "K0903", "Q9993", "Q9994", "Q9995"), QUARTERLY_ADDED_AND_ENDED),
    },
}

# Codes CMS marks N (no maintenance) on which our diff finds a change, with why.
UNREPORTED: dict[int, dict[str, str]] = {
    2018: {
        **dict.fromkeys(("C1842", "E0627", "E0628", "E0629", "G0477", "G0478", "G0479", "G0480", "G0481", "G0482",
                         "G0483", "G0659"), CORRECTED_AFTER_RELEASE),
        **dict.fromkeys(("E0210", "E0776", "G0259", "G0475", "G0476", "G0499", "G0500", "G8896", "J3010", "J3060",
                         "J7342"), SILENT_EDIT),
    },
    2019: {
        **dict.fromkeys(("C9488", "C9745", "C9746", "C9747", "G0279", "G9367", "G9368", "G9481", "G9482", "G9483",
                         "G9484", "G9485", "G9486", "G9487", "G9488", "G9489", "G9490", "G9637", "G9638", "G9868",
                         "G9869", "G9870"), CORRECTED_AFTER_RELEASE),
        **dict.fromkeys(("G8891", "G9801", "G9898"), SILENT_EDIT),
    },
}

# In the release file, absent from CMS's report of the same zip.
MISSING_FROM_REPORT = {2018: {"L1"}, 2019: set()}

# Figures, per CMS action: CMS's count; the codes where our diff has the matching change type; and,
# of those, the codes CMS gave another action letter, by letter (one letter per code: a code whose
# long description changed with its short one is C, not S; a discontinued code whose payment
# fields were cleared is D, not P; a quarterly code added and ended is D, not A).
FIGURES = {
    2018: {
        "A": (152, 168, {"D": 14}),
        "C": (50, 59, {"P": 1}),
        "D": (40, 29, {}),
        "S": (19, 70, {"C": 48, "P": 1}),
        "P": (64, 67, {"D": 3}),
    },
    2019: {
        "A": (228, 244, {"D": 16, "C": 1}),
        "B": (1, 114, {"C": 93, "A": 2}),
        "C": (94, 114, {"A": 2, "B": 1}),
        "D": (49, 33, {}),
        "S": (8, 101, {"C": 86, "A": 2}),
        "P": (47, 56, {"D": 5}),
    },
}


def matching_codes(changes: list[Change], action: str) -> set[str]:
    """Codes on which our diff has the change that CMS's action letter names."""
    if action == "A":
        return {c.key for c in changes if c.change_type in ("added", "key_changed")}
    if action in ("B", "C"):
        return {c.key for c in changes if c.change_type == "long_description_changed"}
    if action == "D":  # a code dropped from the file is not in the newer report: see its own test
        return {c.key for c in changes if c.change_type == "discontinued" and c.field is not None}
    if action == "S":
        return {c.key for c in changes if c.change_type == "short_description_changed"}
    if action == "P":
        return {c.key for c in changes if c.field in PAYMENT_FIELDS}
    raise ValueError(action)


@pytest.fixture(scope="module")
def releases():
    return {year: read_hcpcs(release_zip(year)) for year in (2017, 2018, 2019)}


@pytest.fixture(scope="module")
def reconciliation(releases):
    result = {}
    for year in (2018, 2019):
        old, new = releases[year - 1], releases[year]
        old_state, new_state = {r.code: r for r in old.records}, {r.code: r for r in new.records}
        changes = diff_hcpcs(
            old_state, new_state,
            old_provenance=Provenance(old.label, old.effective_date, old.path),
            new_provenance=Provenance(new.label, new.effective_date, new.path),
        )
        report = read_hcpcs_changes(release_zip(year)).by_code()
        corrected = {e.code for doc in read_corrections(HCPCS_DIR / f"{year - 1}-HCPCS-Alpha-Numeric-Corrections.zip")
                     for e in doc.events}
        result[year] = (old_state, new_state, changes, report, corrected)
    return result


@pytest.mark.parametrize("year", [2018, 2019])
def test_report_agrees_with_the_release_file(reconciliation, year):
    _, new_state, _, report, _ = reconciliation[year]
    assert set(new_state) - set(report) == MISSING_FROM_REPORT[year] and not set(report) - set(new_state)
    assert [code for code in report if report[code].action_code != new_state[code].action_code] == []


@pytest.mark.parametrize("year", [2018, 2019])
def test_every_reported_action_is_in_our_diff_or_explained(reconciliation, year):
    old_state, new_state, changes, report, _ = reconciliation[year]
    by_code: dict[str, list[Change]] = {}
    for change in changes:
        by_code.setdefault(change.key, []).append(change)
    for action in "ABCDSP":
        reported = {code for code, row in report.items() if row.action_code == action}
        unmatched = reported - matching_codes(changes, action)
        assert unmatched == set(UNMATCHED[year].get(action, {})), action
        for code in unmatched:
            types = {c.change_type for c in by_code.get(code, [])}
            reason = UNMATCHED[year][action][code]
            if reason == QUARTERLY_ADDED_AND_ENDED:
                assert code not in old_state and types == {"added"} and new_state[code].termination_date is not None
            elif reason == ADDED_BY_QUARTERLY_UPDATE:
                assert code not in old_state and types == {"added"}
            elif reason == CODE_REUSED:
                assert {"long_description_changed", "administrative_data_changed"} <= types
                assert old_state[code].added_date != new_state[code].added_date
            elif reason == ALREADY_IN_OLDER_FILE:
                assert code in old_state and types == set()


@pytest.mark.parametrize("year", [2018, 2019])
def test_every_change_of_ours_is_reported_or_explained(reconciliation, year):
    old_state, _, changes, report, corrected = reconciliation[year]
    kept = [c for c in changes if not (c.change_type == "discontinued" and c.field is None)]
    unreported = {c.key for c in kept if c.key not in report or report[c.key].action_code == "N"}
    assert unreported == set(UNREPORTED[year])
    for code, reason in UNREPORTED[year].items():
        assert (code in corrected) == (reason == CORRECTED_AFTER_RELEASE), code


@pytest.mark.parametrize("year", [2018, 2019])
def test_dropped_codes_were_terminated_in_the_older_file(reconciliation, year):
    old_state, _, changes, report, _ = reconciliation[year]
    dropped = {c.key for c in changes if c.change_type == "discontinued" and c.field is None}
    assert len(dropped) == {2018: 107, 2019: 3}[year]
    assert not dropped & set(report)  # CMS's report lists the newer file's codes only
    never_terminated = sorted(code for code in dropped if old_state[code].termination_date is None)
    assert never_terminated == {2018: [], 2019: ["DA", "G9976", "G9977"]}[year]


@pytest.mark.parametrize("year", [2018, 2019])
def test_counts_reconcile(reconciliation, year):
    _, _, changes, report, _ = reconciliation[year]
    cms = Counter(row.action_code for row in report.values())
    for action, (cms_count, ours_count, other_letters) in FIGURES[year].items():
        ours = matching_codes(changes, action)
        reported = {code for code, row in report.items() if row.action_code == action}
        assert (cms[action], len(ours)) == (cms_count, ours_count), action
        unmatched = set(UNMATCHED[year].get(action, {}))
        explained = {code for code in ours - reported if code not in report or report[code].action_code == "N"}
        other_letter = Counter(report[code].action_code for code in ours - reported - explained)
        assert explained <= set(UNREPORTED[year])
        assert other_letter == Counter(other_letters), action
        assert len(ours) == len(reported) - len(unmatched) + len(explained) + sum(other_letters.values()), action


@pytest.mark.parametrize("year", [2018, 2019])
def test_real_diff_applies_and_links_replacements(reconciliation, year):
    old_state, new_state, changes, _, _ = reconciliation[year]
    applied = apply_changes(old_state, changes)
    assert {code: r.state() for code, r in applied.items()} == {code: r.state() for code, r in new_state.items()}
    assert not [c for c in changes if c.change_type == "key_changed"]  # no code left the file for a new number
    replaced = sorted((c.related_key, c.key) for c in changes if c.change_type == "added" and c.related_key)
    assert replaced == {
        2018: [("C9483", "J9022")],
        2019: [("C9014", "J0567"), ("C9024", "J9153"), ("C9028", "J9229"), ("C9029", "J1628"), ("C9492", "J9173"),
               ("C9493", "J1301")],
    }[year]
