"""CMS's corrections to the 2017, 2018 and 2019 HCPCS releases, read as typed events."""

from __future__ import annotations

import os
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from loaders.errors import LoadError
from loaders.hcpcs_corrections import (
    CORRECTION_KINDS,
    FIELD_OPERATIONS,
    CorrectionDocument,
    CorrectionEvent,
    FieldChange,
    is_corrections_file,
    read_corrections,
)
from loaders.hcpcs_record import STATE_FIELDS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HCPCS = SHARED / "cms" / "hcpcs"
CORRECTIONS = {year: HCPCS / f"{year}-HCPCS-Alpha-Numeric-Corrections.zip" for year in (2017, 2018, 2019)}

#: (events, unapplied) per (release year, version), measured on the real zips.
EXPECTED_COUNTS = {
    (2017, 1): (12, 2),
    (2018, 1): (24, 2),
    (2018, 2): (28, 2),
    (2018, 3): (30, 2),
    (2018, 4): (28, 2),
    (2019, 1): (11, 2),
    (2019, 2): (3, 2),
}

_documents_cache: dict[int, list[CorrectionDocument]] = {}


def documents(year: int) -> list[CorrectionDocument]:
    if year not in _documents_cache:
        _documents_cache[year] = read_corrections(CORRECTIONS[year])
    return _documents_cache[year]


def event(document: CorrectionDocument, code: str) -> CorrectionEvent:
    [found] = [candidate for candidate in document.events if candidate.code == code]
    return found


def changes(found: CorrectionEvent) -> dict[tuple[str, str], object]:
    return {(change.field, change.operation): change.value for change in found.changes}


def set_values(found: CorrectionEvent) -> dict[str, object]:
    return {change.field: change.value for change in found.changes if change.operation == "set"}


# --- the real 2018 corrections: four versions ------------------------------------------------


def test_2018_has_four_versions_in_order_dated_by_their_xlsx_members():
    found = documents(2018)
    assert [document.version for document in found] == [1, 2, 3, 4]
    assert [document.knowledge_date for document in found] == [
        date(2017, 12, 22),
        date(2018, 1, 3),
        date(2018, 1, 9),
        date(2018, 1, 11),
    ]
    assert {document.release_year for document in found} == {2018}
    assert [document.member for document in found] == [f"V{n}_HCPC2018_Corrections_ANWEB.xlsx" for n in (1, 2, 3, 4)]
    # the .prn copies of V1-V3 were re-saved on 2018-09-11: their dates are not the knowledge dates
    assert "V1_HCPC2018_Corrections_ANWEB.prn 2018-09-11" in found[0].knowledge_date_basis
    assert "earliest copy of version 1" in found[0].knowledge_date_basis


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_2018_every_version_revises_g0279_long_description(version):
    found = event(documents(2018)[version - 1], "G0279")
    assert found.kind == "revise"
    assert found.action_text == "Revise Long Desc"
    assert found.changes == (
        FieldChange(
            "long_description",
            "Diagnostic digital breast tomosynthesis, unilateral or bilateral "
            "(list separately in addition to 77065 or 77066)",
        ),
    )
    assert found.effective_date == date(2018, 1, 1)
    assert found.source_row == 10


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_2018_every_version_adds_g9868_to_g9870(version):
    document = documents(2018)[version - 1]
    minutes = {"G9868": "less than 10 minutes", "G9869": "10-20 minutes", "G9870": "20 or more minutes"}
    short = {"G9868": "Next Gen ACO model <10min", "G9869": "Next Gen ACO model 10-20min", "G9870": "Next Gen ACO model >20min"}
    for code, tail in minutes.items():
        found = event(document, code)
        assert found.kind == "add"
        assert found.action_text == "ADD Code"
        assert set_values(found) == {
            "short_description": short[code],
            "long_description": "Receipt and analysis of remote, asynchronous images for dermatologic and/or "
            f"ophthalmologic evaluation, for use under the Next Generation ACO model, {tail}",
            "type_of_service": ("1",),
            "betos": "M5D",
            "coverage_code": "C",
            "pricing_indicators": ("13",),
            "action_code": "A",
            "added_date": date(2018, 1, 1),
            "action_effective_date": date(2018, 1, 1),
        }


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_2018_every_version_reverts_g9637_g9638_to_the_2017_descriptions(version):
    document = documents(2018)[version - 1]
    for code, row in (("G9637", 14), ("G9638", 15)):
        found = event(document, code)
        assert found.kind == "revert"
        assert found.revert_to_year == 2017
        assert found.action_text == "Should not have been updated - revert back to 2017 description"
        assert found.changes == (FieldChange("long_description", None), FieldChange("short_description", None))
        assert found.effective_date == date(2018, 1, 1)  # the row gives none: the release's
        assert found.source_row == row


def test_2018_asc_lab_and_two_description_revisions_in_v1():
    document = documents(2018)[0]
    asc = event(document, "C9488")
    assert asc.kind == "revise"
    assert set_values(asc) == {"asc_group": "YY", "asc_effective_date": date(2017, 4, 1)}
    assert asc.effective_date == date(2017, 4, 1)  # the row says so
    lab = event(document, "G0499")
    assert lab.changes == (FieldChange("lab_certifications", "220", "include"),)
    both = event(document, "G9367")
    assert set_values(both) == {
        "short_description": ">= 2 same hi-rsk med ord",
        "long_description": "At least two orders for the same high-risk medication",
    }
    assert {found.code for found in document.events} >= {f"G94{n}" for n in range(81, 90)}


def test_2018_later_versions_delete_add_then_withdraw_codes():
    v1, v2, v3, v4 = documents(2018)
    assert not {"G9890", "G9978", "G9989"} & {found.code for found in v1.events}
    for document in (v2, v3, v4):
        for code in ("G9890", "G9891"):
            found = event(document, code)
            assert (found.kind, found.changes, found.action_text) == ("delete", (), "DELETE")
    assert event(v2, "G9978").kind == "add"
    assert set_values(event(v2, "G9979"))["short_description"] == "Doc med rsn no dil mac exam"
    assert event(v3, "G9978").kind == "withdraw"
    assert event(v3, "G9978").action_text == "Remove, will be assigned at a later date"
    assert event(v3, "G9989").kind == "add"
    assert set_values(event(v3, "G9989"))["pricing_indicators"] == ("00",)
    assert event(v4, "G9989").kind == "withdraw"
    assert event(v4, "G9990").action_text == "DO NOT ADD - Remove from previous corrections document"
    assert "G9978" not in {found.code for found in v4.events}


# --- 2017 and 2019 ---------------------------------------------------------------------------


def test_2017_single_version_adds_terminates_and_removes_cross_references():
    [document] = documents(2017)
    assert (document.release_year, document.version, document.knowledge_date) == (2017, 1, date(2016, 12, 14))
    assert document.member == "hcpc2017_corrections_alpha.xlsx"
    added = event(document, "C1842")
    assert set_values(added)["type_of_service"] == ("9", "F")
    assert set_values(added)["pricing_indicators"] == ("53",)  # a number in the xlsx cell
    assert event(document, "E0627").changes == (FieldChange("cross_references", "Q0080", "exclude"),)
    ended = event(document, "G0477")
    assert ended.kind == "terminate"
    assert set_values(ended) == {
        "action_code": "D",
        "action_effective_date": date(2017, 1, 1),
        "termination_date": date(2016, 12, 31),
    }
    assert event(document, "G0480").action_text == "ReviseLong Description"
    assert event(document, "G0480").kind == "revise"


def test_2019_versions_dates_and_events():
    v1, v2 = documents(2019)
    assert (v1.version, v1.knowledge_date, v2.version, v2.knowledge_date) == (1, date(2018, 12, 20), 2, date(2019, 1, 3))
    # the v1 xlsx was re-saved on 2019-01-03 with v2; its .prn copy keeps 2018-12-20
    assert v1.knowledge_date_basis.startswith("zip member date of HCPC2019_Corrections_ALPHA.prn")
    assert set_values(event(v1, "A5513")) == {"action_code": "F", "action_effective_date": date(2019, 1, 1)}
    assert set_values(event(v1, "C1890"))["statute"] == "1833(t)"
    discontinued = event(v1, "C9034")
    assert discontinued.kind == "terminate"
    assert set_values(discontinued)["cross_references"] == ("J1095",)
    assert set_values(discontinued)["termination_date"] == date(2018, 12, 31)
    assert set_values(event(v1, "C9468")) == {"cross_references": ("J7203",)}
    assert set_values(event(v1, "Q2026")) == {"asc_group": "", "asc_effective_date": None}
    assert set_values(event(v1, "J2787"))["short_description"] == "Riboflavin 5\u2019phos opth<=3ml"
    udenyca = event(v1, "Q5111")  # EFF DATE typed as "01/0/12019" in the xlsx
    assert udenyca.effective_date == date(2019, 1, 1)
    assert set_values(udenyca)["type_of_service"] == ("1", "P")
    cov = event(v1, "Q9994")
    assert cov.effective_date == date(2018, 12, 3)
    assert set_values(cov) == {"coverage_code": "C", "pricing_indicators": ("39",)}
    modifier = event(v2, "DA")
    assert (modifier.kind, modifier.revert_to_year, modifier.effective_date) == ("reinstate", 2018, date(2011, 1, 1))
    assert [change.field for change in modifier.changes] == list(STATE_FIELDS)
    assert set_values(event(v2, "C1890")) == {"asc_group": "YY", "asc_effective_date": date(2019, 1, 1)}


# --- every row accounted for -----------------------------------------------------------------


def _non_blank_rows(archive_path: Path, member: str) -> int:
    with zipfile.ZipFile(archive_path) as archive:
        data = archive.read(member)
    workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    count = 0
    for name in workbook.sheet_names:
        for row in workbook.get_sheet_by_name(name).to_python(skip_empty_area=False):
            count += any(cell not in ("", None) and str(cell).strip() for cell in row)
    return count


@pytest.mark.parametrize("year", [2017, 2018, 2019])
def test_every_row_is_an_event_or_unapplied_with_a_reason(year):
    for document in documents(year):
        counts = (len(document.events), len(document.unapplied))
        assert counts == EXPECTED_COUNTS[(year, document.version)]
        assert sum(counts) == _non_blank_rows(CORRECTIONS[year], document.member)
        rows = [found.source_row for found in document.events] + [row for row, _, _ in document.unapplied]
        assert len(rows) == len(set(rows))
        assert all(reason for _, _, reason in document.unapplied)
        assert {found.kind for found in document.events} <= set(CORRECTION_KINDS)
        for found in document.events:
            for change in found.changes:
                assert change.field in STATE_FIELDS + ("action_code", "action_effective_date")
                assert change.operation in FIELD_OPERATIONS
    assert "title" in documents(year)[0].unapplied[0][2]
    assert documents(year)[0].unapplied[1][2] == "column header"


# --- copies of one version agree -------------------------------------------------------------


def _rezip(tmp_path: Path, source: Path, keep: str) -> Path:
    """A zip holding only the members of ``source`` whose names end with ``keep``, dates kept."""
    target = tmp_path / source.name
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for info in archive.infolist():
            if info.filename.endswith(keep):
                out.writestr(info, archive.read(info))
    return target


def test_2017_tab_separated_txt_gives_the_same_events_as_the_xlsx(tmp_path):
    [from_txt] = read_corrections(_rezip(tmp_path, CORRECTIONS[2017], ".txt"))
    [from_xlsx] = documents(2017)
    assert from_txt.member == "hcpc2017_corrections_alpha.txt"
    assert from_txt.events == from_xlsx.events
    assert [row for row, _, _ in from_txt.unapplied] == [row for row, _, _ in from_xlsx.unapplied]
    assert from_txt.knowledge_date == from_xlsx.knowledge_date


def _prn_lines(archive_path: Path, member: str) -> list[str]:
    with zipfile.ZipFile(archive_path) as archive:
        text = archive.read(member).decode("cp1252")
    lines = text.splitlines()
    header = next(index for index, line in enumerate(lines) if line.split()[:2] == ["CODE", "ACTION"])
    return [line for line in lines[header + 1 :] if line.strip()]


def _xlsx_data_rows(archive_path: Path, member: str) -> list[list[str]]:
    with zipfile.ZipFile(archive_path) as archive:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(archive.read(member)))
    rows = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    header = next(index for index, row in enumerate(rows) if str(row[0]).strip() == "CODE")
    shown = []
    for row in rows[header + 1 :]:
        cells = []
        for cell in row:
            if isinstance(cell, date):
                cells.append(cell.strftime("%m/%d/%Y"))
            elif isinstance(cell, float):
                cells.append(str(int(cell)))
            elif str(cell).strip():
                cells.append(str(cell).strip())
        if cells:
            shown.append(cells)
    return shown


@pytest.mark.parametrize(
    ("year", "prn", "xlsx"),
    [
        (2018, f"V{n}_HCPC2018_Corrections_ANWEB.prn", f"V{n}_HCPC2018_Corrections_ANWEB.xlsx")
        for n in (1, 2, 3, 4)
    ]
    + [
        (2019, "HCPC2019_Corrections_ALPHA.prn", "HCPC2019_Corrections_ALPHA.xlsx"),
        (2019, "HCPC2019_Corrections_ALPHA_v2.prn", "HCPC2019_Corrections_ALPHA_v2.xlsx"),
    ],
)
def test_prn_copy_agrees_with_the_xlsx_that_is_read(year, prn, xlsx):
    """The .prn export cuts each column to its width: each xlsx cell must show as its start, in order."""
    lines = _prn_lines(CORRECTIONS[year], prn)
    rows = _xlsx_data_rows(CORRECTIONS[year], xlsx)
    assert len(lines) == len(rows)
    for line, cells in zip(lines, rows):
        assert line.split()[0] == cells[0]
        position = 0
        for cell in cells:
            start = (cell[:8] if len(cell) >= 8 else cell[:2]).rstrip()
            found = line.find(start, position)
            assert found >= 0, (line, cell)
            position = found + len(start)


def test_is_corrections_file_judges_by_content(tmp_path):
    assert all(is_corrections_file(path) for path in CORRECTIONS.values())
    assert not is_corrections_file(HCPCS / "2017-Record-Layout.zip")
    renamed = tmp_path / "anything.bin"
    renamed.write_bytes(CORRECTIONS[2019].read_bytes())
    assert is_corrections_file(renamed)
    readme = tmp_path / "README.txt"
    readme.write_text("Update Information\r\n")
    assert not is_corrections_file(readme)


def test_is_corrections_file_is_false_for_an_annual_release():
    assert not is_corrections_file(HCPCS / "2017-Alpha-Numeric-HCPCS-File.zip")


# --- tiny cases ------------------------------------------------------------------------------

HEADER = "CODE\tACTION\tEFF DATE\tSHORT DESC\tLONG DESC\tTOS\tCOMMENTS"
MEMBER = "HCPC2018_Corrections_fixture.txt"


def corrections_text(*rows: str, title: str = "\t2018 HCPCS CORRECTIONS", header: str = HEADER) -> str:
    return "\r\n".join([title, "\t\t", "", header, *rows]) + "\r\n"


def corrections_zip(tmp_path: Path, members: dict[str, str], when=(2018, 1, 5, 10, 0, 0)) -> Path:
    path = tmp_path / "fixture.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name, when), text.encode("cp1252"))
    return path


def test_tab_separated_fixture_reads_note_rows_into_unapplied(tmp_path):
    path = corrections_zip(
        tmp_path,
        {
            MEMBER: corrections_text(
                "G0151\tRevise Long Desc\t\t\tServices performed by a qualified physical therapist",
                "\tNote: more corrections may follow",
                "\t\t\t",
            ),
            "README.txt": "Update Information\r\n",
        },
    )
    [document] = read_corrections(path)
    assert (document.release_year, document.version, document.knowledge_date) == (2018, 1, date(2018, 1, 5))
    assert document.member == MEMBER
    [found] = document.events
    assert (found.code, found.kind, found.source_row, found.effective_date) == ("G0151", "revise", 5, date(2018, 1, 1))
    assert document.unapplied[-1] == (6, "Note: more corrections may follow", "no code: a note, not a correction")


def test_a_bare_text_file_has_no_knowledge_date_whatever_its_modification_time(tmp_path):
    path = tmp_path / "hcpc2018_corrections.txt"
    path.write_text(corrections_text("G0151\tDELETE"))
    os.utime(path, (1_600_000_000, 1_600_000_000))  # 2020-09-13: the file system's date is not read
    [document] = read_corrections(path)
    assert document.member is None
    assert document.events[0].kind == "delete"
    assert document.knowledge_date is None
    assert document.knowledge_date_basis == (
        "no publication date in the file (a corrections document outside CMS's zip has no member date)")
    assert is_corrections_file(path)


def test_versions_come_back_in_version_order(tmp_path):
    path = corrections_zip(
        tmp_path,
        {
            "HCPC2018_Corrections_v2.txt": corrections_text("G0151\tDELETE"),
            "HCPC2018_Corrections.txt": corrections_text("G0151\tRevise Long Desc\t\t\tNew text"),
        },
    )
    assert [document.version for document in read_corrections(path)] == [1, 2]


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("G0151\tRevise the moon\t01/01/2018", "ACTION", "'Revise the moon' for G0151 is not a known correction"),
        ("G0151\tADD Code\t02/30/2018\tPT visit\tPhysical therapy visit", "EFF DATE", "'02/30/2018' is not a date"),
        ("G0151\tADD Code\t1/0/12018\tPT visit\tPhysical therapy visit", "EFF DATE", "'1/0/12018' is not a date"),
        ("G0151\tTerminate code\t01/01/2018\t\tPhysical therapy visit", "LONG DESC", "does not use"),
        ("G0151\tRevise Long Desc\t01/01/2018", "LONG DESC", "needs a value here"),
        ("G0151\t\t01/01/2018", "ACTION", "G0151 has no action"),
        ("G01512\tDELETE", "CODE", "'G01512' is not a HCPCS code"),
        ("G0151\tADD Code\t01/01/2018\tPT\tPT visit\t1\tsee manual", "COMMENTS", "comment 'see manual' is not understood"),
        ("G0151\tChange ASC Ind/ASC eff date\t\t\t\t\t", "ASC IND", "needs a value here"),
    ],
    ids=["unknown-action", "bad-date", "bad-date-7-digits", "unused-column", "missing-value", "no-action", "bad-code", "comment", "missing-asc"],
)
def test_bad_row_names_file_row_and_field(tmp_path, row, field, words):
    header = HEADER + "\tASC IND" if field == "ASC IND" else HEADER
    path = corrections_zip(tmp_path, {MEMBER: corrections_text(row, header=header)})
    with pytest.raises(LoadError) as raised:
        read_corrections(path)
    error = raised.value
    assert error.path == f"{path}!{MEMBER}"
    assert (error.line, error.field) == (5, field)
    assert words in error.message
    assert str(error).startswith(f"{path}!{MEMBER}, line 5, field {field}: ")


def test_misplaced_slash_with_eight_digits_is_read():
    # the one real case: Q5111 in the 2019 v1 xlsx reads "01/0/12019"
    assert event(documents(2019)[0], "Q5111").effective_date == date(2019, 1, 1)


def test_unknown_column_heading_names_the_heading(tmp_path):
    path = corrections_zip(tmp_path, {MEMBER: corrections_text("G0151\tDELETE", header=HEADER + "\tMOOD")})
    with pytest.raises(LoadError) as raised:
        read_corrections(path)
    assert (raised.value.line, raised.value.field) == (4, "MOOD")


def test_empty_file(tmp_path):
    path = tmp_path / "2018-HCPCS-Alpha-Numeric-Corrections.zip"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match="empty file") as raised:
        read_corrections(path)
    assert raised.value.path == str(path)
    assert not is_corrections_file(path)


def test_zip_with_no_corrections_inside(tmp_path):
    path = corrections_zip(tmp_path, {"README.txt": "Update Information\r\n", "empty.txt": ""})
    with pytest.raises(LoadError, match="no HCPCS corrections document inside the zip") as raised:
        read_corrections(path)
    assert raised.value.path == str(path)
    assert not is_corrections_file(path)


def test_a_version_only_as_prn_is_refused(tmp_path):
    prn = "         2018 HCPCS CORRECTIONS\r\n\r\n\r\n  CODE           ACTION\r\n  G9890  DELETE\r\n"
    path = corrections_zip(tmp_path, {"V1_HCPC2018_Corrections_ANWEB.prn": prn})
    with pytest.raises(LoadError, match="fixed-column .prn") as raised:
        read_corrections(path)
    assert raised.value.path == f"{path}!V1_HCPC2018_Corrections_ANWEB.prn"


def test_two_copies_of_one_version_in_the_same_format_are_refused(tmp_path):
    path = corrections_zip(
        tmp_path,
        {"a/HCPC2018_Corrections.txt": corrections_text("G0151\tDELETE"), "b/HCPC2018_Corrections.txt": corrections_text("G0152\tDELETE")},
    )
    with pytest.raises(LoadError, match="version 1 is given twice"):
        read_corrections(path)


def test_title_year_must_match_the_file_name(tmp_path):
    path = corrections_zip(tmp_path, {"HCPC2019_Corrections.txt": corrections_text("G0151\tDELETE")})
    with pytest.raises(LoadError, match="title corrects 2018 but the file name says 2019"):
        read_corrections(path)


def test_a_text_file_without_the_corrections_title_is_refused(tmp_path):
    path = tmp_path / "hcpc2018_corrections.txt"
    path.write_text(HEADER + "\r\nG0151\tDELETE\r\n")
    with pytest.raises(LoadError, match="not a HCPCS corrections document") as raised:
        read_corrections(path)
    assert raised.value.path == str(path)
    assert not is_corrections_file(path)
