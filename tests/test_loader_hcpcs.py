"""The HCPCS Level II release reader, on the real CMS files and on small broken inputs."""

from __future__ import annotations

import re
import struct
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from loaders import hcpcs
from loaders.errors import LoadError
from loaders.hcpcs import HcpcsRelease, is_hcpcs_file, read_hcpcs
from loaders.hcpcs_layout import HCPCS_LAYOUT, RECORD_LENGTH
from loaders.hcpcs_record import RECORD_FIELDS, STATE_FIELDS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HCPCS_DIR = SHARED / "cms" / "hcpcs"
SAMPLE = Path(__file__).resolve().parent / "fixtures" / "hcpcs" / "sample_anweb.txt"

ANNUAL = {
    2017: ("2017-Alpha-Numeric-HCPCS-File.zip", "HCPC17_CONTR_ANWEB"),
    2018: ("2018-Alpha-Numeric-HCPCS-File.zip", "HCPC2018_CONTR_ANWEB_disc"),
    2019: ("2019-Alpha-Numeric-HCPCS-File.zip", "HCPC2019_CONTR_ANWEB"),
}
LAYOUT_ZIPS = {
    2017: ("2017-Record-Layout.zip", "HCPCS17_recordlayout.txt"),
    2018: ("2018-HCPCS-Record-Layout-.zip", "HCPCS18_recordlayout.txt"),
    2019: ("2019-HCPCS-Record-Layout.zip", "HCPCS2019_recordlayout.txt"),
}
XLSX_HEADER = (
    "HCPC|SEQNUM|RECID|LONG DESCRIPTION|SHORT DESCRIPTION|PRICE1|PRICE2|PRICE3|PRICE4|MULT_PI|CIM1|CIM2|CIM3|"
    "MCM1|MCM2|MCM3|STATUTE|LABCERT1|LABCERT2|LABCERT3|LABCERT4|LABCERT5|LABCERT6|LABCERT7|LABCERT8|XREF1|"
    "XREF2|XREF3|XREF4|XREF5|COV|ASC_GRP|ASC_DT|OPPS|OPPS_PI|OPPS_DT|PROCNOTE|BETOS|TOS1|TOS2|TOS3|TOS4|TOS5|"
    "ANEST_BU|ADD DT|ACT EFF DT|TERM DT|ACTION CD"
).split("|")

_releases: dict[tuple[int, str], HcpcsRelease] = {}


def annual(year: int, extension: str = "txt") -> HcpcsRelease:
    """The annual release of ``year`` read from its zip (its txt or its xlsx member), read once."""
    if (year, extension) not in _releases:
        archive, stem = ANNUAL[year]
        _releases[year, extension] = read_hcpcs(f"{HCPCS_DIR / archive}!{stem}.{extension}")
    return _releases[year, extension]


def by_code(release: HcpcsRelease) -> dict:
    return {record.code: record for record in release.records}


def assert_located(error: pytest.ExceptionInfo, path: object, *, line: int | None, field: str) -> None:
    """The error names the file, the line or row (when the problem has one) and the field."""
    message = str(error.value)
    assert error.value.path == str(path) and message.startswith(str(path))
    assert error.value.line == line
    if line is not None:
        assert f"line {line}," in message
    assert error.value.field == field and f"field {field}:" in message


# --- the layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("year", sorted(LAYOUT_ZIPS))
def test_layout_table_matches_the_official_record_layout(year):
    archive, member = LAYOUT_ZIPS[year]
    text = zipfile.ZipFile(HCPCS_DIR / archive).read(member).decode("cp1252")
    # Each field: "  9.   HCPCS Pricing Indicator Code" then "  2    120    121    CHAR" (the
    # length, begin and end columns; for a repeated field, of its first occurrence).
    official = {
        int(item): (int(length), int(begin), int(end))
        for item, length, begin, end in re.findall(r"^\s+(\d+)\.\s+.*\n(?:.*\n)?\s+(\d+)\s+(\d+)\s+(\d+)\b", text, re.M)
    }
    assert sorted(official) == list(range(1, 32))
    for field in HCPCS_LAYOUT:
        length, begin, end = official[field.item]
        assert (field.width, field.start, field.start + field.width - 1) == (length, begin, end), field.name


def test_layout_covers_every_column_once():
    covered = [column for field in HCPCS_LAYOUT if field.kind != "redefines" for column in range(field.start, field.end + 1)]
    assert covered == list(range(1, RECORD_LENGTH + 1))
    assert {field.name for field in HCPCS_LAYOUT} >= set(RECORD_FIELDS) - {"kind", "source_line"}


# --- the real annual releases -------------------------------------------------------------------


@pytest.mark.parametrize(("year", "procedures", "modifiers"), [(2017, 6155, 343), (2018, 6205, 354), (2019, 6440, 360)])
def test_annual_release_record_counts(year, procedures, modifiers):
    release = annual(year)
    kinds = [record.kind for record in release.records]
    assert (kinds.count("procedure"), kinds.count("modifier")) == (procedures, modifiers)
    assert len(release.records) == {2017: 6498, 2018: 6559, 2019: 6800}[year]


@pytest.mark.parametrize("year", [2017, 2018, 2019])
def test_annual_release_metadata(year):
    release = annual(year)
    archive, stem = ANNUAL[year]
    assert release.path == f"{HCPCS_DIR / archive}!{stem}.txt"
    assert (release.member, release.file_format) == (f"{stem}.txt", "txt")
    assert release.effective_date == date(year, 1, 1)
    assert release.effective_date_basis == f"file name {stem}.txt"
    assert release.label == f"{year} annual"
    published = {2017: date(2016, 11, 3), 2018: date(2017, 11, 3), 2019: date(2018, 11, 2)}[year]
    assert release.published_date == published
    assert release.published_date_basis == f"publication date in HCPC{year}_README.txt"


def test_zip_alone_reads_its_anweb_txt():
    release = read_hcpcs(HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip")
    assert release.member == "HCPC2019_CONTR_ANWEB.txt"
    assert release.records == annual(2019).records


def test_records_in_file_order_with_their_source_lines():
    records = annual(2019).records
    assert [record.source_line for record in records] == sorted(record.source_line for record in records)
    assert records[0].code == "A1" and records[0].source_line == 9  # after 8 disclaimer lines
    assert records[-1].code == "V5364"


def test_g0154_terminated_and_still_listed():
    for year in (2017, 2018, 2019):
        record = by_code(annual(year))["G0154"]
        assert record.termination_date == date(2016, 2, 29)
        assert record.kind == "procedure"


def test_g0493_to_g0496_added_2017_then_unchanged():
    for code in ("G0493", "G0494", "G0495", "G0496"):
        actions = {year: by_code(annual(year))[code] for year in (2017, 2018, 2019)}
        assert all(record.added_date == date(2017, 1, 1) for record in actions.values())
        assert [actions[year].action_code for year in (2017, 2018, 2019)] == ["A", "N", "N"]


def test_g0151_same_state_in_three_releases():
    states = {by_code(annual(year))["G0151"].state() for year in (2017, 2018, 2019)}
    assert len(states) == 1
    g0151 = by_code(annual(2019))["G0151"]
    assert g0151.long_description == (
        "Services performed by a qualified physical therapist in the home health or hospice setting, each 15 minutes"
    )
    assert g0151.pricing_indicators == ("00",) and g0151.type_of_service == ("1",)
    assert g0151.added_date == date(1999, 7, 1)
    assert len(STATE_FIELDS) == len(g0151.state())


def test_long_description_rebuilt_from_seventeen_lines():
    g0503 = by_code(annual(2019))["G0503"]  # 1 first line + 16 continuation lines in the txt
    assert g0503.long_description.startswith("Subsequent psychiatric collaborative care management, first 60 minutes in a subsequent month")
    assert g0503.long_description.endswith("and/or other treatment goals and are prepared for discharge from active treatment")
    assert "  " not in g0503.long_description
    assert g0503.sequence_number == 100


def test_modifier_code_and_continuation():
    ad = by_code(annual(2019))["AD"]
    assert ad.kind == "modifier"
    assert ad.long_description == "Medical supervision by a physician: more than four concurrent anesthesia procedures"
    assert ad.added_date is not None and ad.type_of_service == ()


def test_short_line_of_316_characters_is_read():
    g8891 = by_code(annual(2019))["G8891"]
    assert "(e.g., patients with palliative goals for whom treatment of hypertension with standard" in g8891.long_description


def test_shifted_asc_dates_of_2018_are_repaired_and_reported():
    release = annual(2018)
    records = by_code(release)
    assert records["C9488"].asc_group == "" and records["C9488"].asc_effective_date == date(2017, 4, 1)
    assert records["C9748"].asc_effective_date == date(2018, 1, 1)
    assert len(release.repairs) == 5
    assert "line 1884, field asc_effective_date" in release.repairs[0]
    assert annual(2019).repairs == ()


# --- txt and xlsx of one release ------------------------------------------------------------------

#: Where CMS's own txt and xlsx of one release disagree (checked against the raw files): the reader
#: reports each edition as it is, so these are the only differences allowed.
KNOWN_EDITION_DIFFERENCES = {
    # 2017: three action effective dates differ (the 2019 txt agrees with the 2017 xlsx).
    2017: {
        "L5638": {"action_effective_date": (date(1996, 1, 1), date(1986, 1, 1))},
        "L5640": {"action_effective_date": (date(1996, 1, 1), date(1986, 1, 1))},
        "L5643": {"action_effective_date": (date(1986, 1, 1), date(1988, 1, 1))},
    },
    2018: {},
    # 2019: the xlsx has a fourth type of service R for E0210 and E0776 that the txt lacks, and
    # leaves the action effective date blank for 115 old codes (checked below by count).
    2019: {
        "E0210": {"type_of_service": (("A", "L", "P"), ("A", "L", "P", "R"))},
        "E0776": {"type_of_service": (("A", "E", "P"), ("A", "E", "P", "R"))},
    },
}


@pytest.mark.parametrize("year", [2017, 2018, 2019])
def test_txt_and_xlsx_of_one_release_agree(year):
    txt, xlsx = annual(year), annual(year, "xlsx")
    assert xlsx.file_format == "xlsx" and xlsx.effective_date == txt.effective_date
    assert [record.code for record in txt.records] == [record.code for record in xlsx.records]
    differences = {}
    blank_in_xlsx = 0
    for from_txt, from_xlsx in zip(txt.records, xlsx.records):
        differing = {
            name: (getattr(from_txt, name), getattr(from_xlsx, name))
            for name in RECORD_FIELDS
            if name != "source_line" and getattr(from_txt, name) != getattr(from_xlsx, name)
        }
        if year == 2019 and differing.keys() == {"action_effective_date"} and from_xlsx.action_effective_date is None:
            blank_in_xlsx += 1
        elif differing:
            differences[from_txt.code] = differing
    assert differences == KNOWN_EDITION_DIFFERENCES[year]
    assert blank_in_xlsx == (115 if year == 2019 else 0)


def test_xlsx_continuation_row_rebuilds_the_long_description():
    g0503_txt = by_code(annual(2019))["G0503"]
    g0503_xlsx = by_code(annual(2019, "xlsx"))["G0503"]  # one RECID 3 row and one RECID 4 row
    assert g0503_xlsx.long_description == g0503_txt.long_description
    assert g0503_xlsx.sequence_number == 100


# --- quarterly xlsx ------------------------------------------------------------------------------


@pytest.mark.parametrize(("quarter", "label", "count"), [("2020-04", "2020 APR", 7097), ("2020-07", "2020 JUL", 7158)])
def test_quarterly_xlsx(quarter, label, count):
    path = HCPCS_DIR / quarter / "anweb.xlsx"
    release = read_hcpcs(path)
    effective = date.fromisoformat(quarter + "-01")
    assert (release.path, release.member, release.file_format) == (str(path), None, "xlsx")
    assert release.label == label and len(release.records) == count
    assert release.effective_date == effective
    assert release.effective_date_basis == f"latest action effective date in the file ({effective.isoformat()})"
    assert release.published_date_basis == "last-modified date in the xlsx document properties"
    assert release.published_date == {"2020-04": date(2020, 3, 31), "2020-07": date(2020, 6, 22)}[quarter]
    assert by_code(release)["G0151"].state() == by_code(annual(2019))["G0151"].state()


# --- small files: effective date, label, formats -------------------------------------------------


def test_sample_txt_with_disclaimer_lines():
    release = read_hcpcs(SAMPLE)
    assert [record.code for record in release.records] == ["AD", "G0151", "G0154", "G8891"]
    assert [record.source_line for record in release.records] == [9, 11, 13, 15]
    assert release.effective_date == date(2016, 3, 1)  # no year in the name: G0154's discontinuation
    assert release.effective_date_basis == "latest action effective date in the file (2016-03-01)"
    assert release.published_date is None  # a bare txt carries no date: not its modification time
    assert release.published_date_basis == "no publication date in the file (a txt outside CMS's zip has no README)"
    full = by_code(annual(2019))
    assert [record.state() for record in release.records] == [full[record.code].state() for record in release.records]


def test_effective_date_given_by_the_user():
    release = read_hcpcs(SAMPLE, effective=date(2019, 7, 1))
    assert release.effective_date == date(2019, 7, 1)
    assert release.effective_date_basis == "given by the user"
    assert release.label == "2019 JUL"


def test_effective_date_from_a_quarterly_file_name(tmp_path):
    path = tmp_path / "HCPC2020_OCT_ANWEB.txt"
    path.write_bytes(SAMPLE.read_bytes())
    release = read_hcpcs(path)
    assert (release.effective_date, release.label) == (date(2020, 10, 1), "2020 OCT")
    assert release.effective_date_basis == "file name HCPC2020_OCT_ANWEB.txt"


def test_lf_line_ends_and_utf8_resave_are_read(tmp_path):
    text = SAMPLE.read_bytes().decode("cp1252").replace("\r\n", "\n")
    text = text.replace("Medical supervision", "Médical supervision")  # same width in characters
    path = tmp_path / "resaved.txt"
    path.write_bytes(text.encode("utf-8"))
    records = read_hcpcs(path).records
    assert records[0].long_description.startswith("Médical supervision by")
    assert len(records) == 4


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    """A minimal xlsx (one sheet "A", inline strings), enough for the reader."""

    def column(index: int) -> str:
        return ("" if index < 26 else chr(ord("A") + index // 26 - 1)) + chr(ord("A") + index % 26)

    sheet_rows = "".join(
        f'<row r="{number}">'
        + "".join(
            f'<c r="{column(index)}{number}" t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c>'
            for index, value in enumerate(row)
            if value != ""
        )
        + "</row>"
        for number, row in enumerate(rows, start=1)
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relationships = "http://schemas.openxmlformats.org/package/2006/relationships"
    office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": f'<Relationships xmlns="{relationships}"><Relationship Id="rId1" Type="{office}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{office}"><sheets><sheet name="A" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{relationships}"><Relationship Id="rId1" Type="{office}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{sheet_rows}</sheetData></worksheet>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for name, xml in parts.items():
            package.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)


def g0151_row(**changes: str) -> list[str]:
    row = dict.fromkeys(XLSX_HEADER, "")
    row.update(
        {
            "HCPC": "G0151", "SEQNUM": "0010", "RECID": "3", "SHORT DESCRIPTION": "Hhcp-serv of pt,ea 15 min",
            "LONG DESCRIPTION": "Services performed by a qualified physical therapist in the home health or",
            "PRICE1": "00", "MULT_PI": "9", "COV": "C", "PROCNOTE": "0082", "BETOS": "Y2", "TOS1": "1",
            "ANEST_BU": "  0", "ADD DT": "19990701", "ACT EFF DT": "20110101", "ACTION CD": "N",
        }
    )
    row.update(changes)
    return list(row.values())


def continuation_row() -> list[str]:
    row = dict.fromkeys(XLSX_HEADER, "")
    row.update({"HCPC": "G0151", "SEQNUM": "0020", "RECID": "4", "LONG DESCRIPTION": "hospice setting, each 15 minutes"})
    return list(row.values())


def test_small_xlsx_with_notes_above_the_header(tmp_path):
    path = tmp_path / "quarter.xlsx"
    write_xlsx(path, [["Note regarding coverage"], [], XLSX_HEADER, g0151_row(), continuation_row()])
    release = read_hcpcs(path)
    (record,) = release.records
    assert record.source_line == 4
    assert record.state() == by_code(annual(2019))["G0151"].state()
    assert is_hcpcs_file(path)


# --- recognising HCPCS files by content ----------------------------------------------------------


def test_is_hcpcs_file(tmp_path):
    assert is_hcpcs_file(HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip")
    assert is_hcpcs_file(HCPCS_DIR / "2020-07" / "anweb.xlsx")
    renamed = tmp_path / "whatever.dat"
    renamed.write_bytes(SAMPLE.read_bytes())
    assert is_hcpcs_file(renamed)
    assert not is_hcpcs_file(HCPCS_DIR / "2019-HCPCS-Record-Layout.zip")
    assert not is_hcpcs_file(HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip")
    assert not is_hcpcs_file(HCPCS_DIR / "2020-07" / "trans_alpha.xlsx")
    notes = tmp_path / "HCPC2019_CONTR_ANWEB.txt"  # the name says HCPCS, the content does not
    notes.write_text("Meeting notes\nnothing to see\n")
    assert not is_hcpcs_file(notes)
    assert not is_hcpcs_file(tmp_path / "missing.txt")


# --- bad input: one case per failure mode --------------------------------------------------------


def sample_lines() -> list[bytes]:
    return SAMPLE.read_bytes().split(b"\r\n")


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\r\n".join(lines))
    return path


def test_empty_file(tmp_path):
    path = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match="empty") as error:
        read_hcpcs(path)
    assert error.value.path == str(path) and str(error.value).startswith(str(path))
    assert (error.value.line, error.value.field) == (None, None)  # a file without a byte has no line


def test_truncated_zip(tmp_path):
    whole = (HCPCS_DIR / "2019-HCPCS-Record-Layout.zip").read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LoadError, match="damaged or truncated zip") as error:
        read_hcpcs(path)
    assert_located(error, path, line=None, field="zip central directory")


def test_zip_without_an_anweb_member(tmp_path):
    path = tmp_path / "2019-Alpha-Numeric-HCPCS-File.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("HCPC2019_README.txt", "November 2, 2018")
    with pytest.raises(LoadError, match=r"no \*ANWEB\*.txt or \*ANWEB\*.xlsx member .*HCPC2019_README.txt") as error:
        read_hcpcs(path)
    assert_located(error, path, line=None, field="member")


def test_unknown_record_type(tmp_path):
    lines = sample_lines()
    lines[12] = lines[12][:10] + b"5" + lines[12][11:]  # line 13: G0154's first line
    path = write_lines(tmp_path / "bad.txt", lines)
    with pytest.raises(LoadError, match="unknown record identification code '5'") as error:
        read_hcpcs(path)
    assert_located(error, path, line=13, field="record_identification_code")


def test_impossible_date(tmp_path):
    lines = sample_lines()
    lines[10] = lines[10][:276] + b"20191332" + lines[10][284:]  # line 11: G0151, action effective date
    path = write_lines(tmp_path / "bad.txt", lines)
    with pytest.raises(LoadError, match="impossible date '20191332'") as error:
        read_hcpcs(path)
    assert_located(error, path, line=11, field="action_effective_date")


def test_non_hcpcs_text_file(tmp_path):
    path = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    path.write_text("\nMinutes of the coding meeting\nG0151 was discussed\n")
    with pytest.raises(LoadError, match="not an HCPCS release") as error:
        read_hcpcs(path)
    assert_located(error, path, line=2, field="record_identification_code")


def test_xlsx_without_a_header_row(tmp_path):
    path = tmp_path / "anweb.xlsx"
    write_xlsx(path, [["Note"], ["G0151", "0010", "3", "Services performed by a qualified physical therapist"]])
    with pytest.raises(LoadError, match=r"no header row with .* in rows 1-50 of sheet\(s\) 'A'") as error:
        read_hcpcs(path)
    assert_located(error, path, line=None, field="HCPC")


def test_xlsx_missing_a_column(tmp_path):
    path = tmp_path / "anweb.xlsx"
    header = [heading if heading != "BETOS" else "" for heading in XLSX_HEADER]
    write_xlsx(path, [header, g0151_row()])
    with pytest.raises(LoadError, match="no column 'BETOS'") as error:
        read_hcpcs(path)
    assert_located(error, path, line=1, field="BETOS")


def test_xlsx_cell_wider_than_the_layout(tmp_path):
    path = tmp_path / "anweb.xlsx"
    write_xlsx(path, [XLSX_HEADER, g0151_row(BETOS="Y2Y2")])
    with pytest.raises(LoadError, match="'Y2Y2' is longer than the 3 characters") as error:
        read_hcpcs(path)
    assert_located(error, path, line=2, field="BETOS")


def test_continuation_of_another_code(tmp_path):
    lines = sample_lines()
    lines[11] = b"G0152" + lines[11][5:]  # line 12 continues G0151 but names G0152
    path = write_lines(tmp_path / "bad.txt", lines)
    with pytest.raises(LoadError, match="continuation line of 'G0152' follows the record of 'G0151'") as error:
        read_hcpcs(path)
    assert_located(error, path, line=12, field="code")


def anweb_zip(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("HCPC2019_CONTR_ANWEB.txt", payload)
    return path


def test_zip_bomb_declared_size_is_refused_before_expanding(tmp_path):
    data = bytearray(anweb_zip(tmp_path / "plain.zip", SAMPLE.read_bytes()).read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 0xFFFF_FFF0)  # uncompressed size: ~4 GB
    path = tmp_path / "bomb.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=r"declares 4,294,967,280 bytes uncompressed, more than the 209,715,200") as error:
        read_hcpcs(path)
    assert_located(error, f"{path}!HCPC2019_CONTR_ANWEB.txt", line=None, field="uncompressed size")


def test_member_holding_more_than_it_declares_is_refused(tmp_path):
    data = bytearray(anweb_zip(tmp_path / "plain.zip", SAMPLE.read_bytes()).read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)  # declares 100 bytes, holds 2,000+
    path = tmp_path / "understated.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="damaged or truncated .*Bad CRC-32") as error:
        read_hcpcs(path)
    assert_located(error, f"{path}!HCPC2019_CONTR_ANWEB.txt", line=None, field="compressed data")


def test_member_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    path = anweb_zip(tmp_path / "big.zip", SAMPLE.read_bytes() + b" " * 50_000)
    monkeypatch.setattr(hcpcs, "MAX_MEMBER_BYTES", 20_000)
    with pytest.raises(LoadError, match="more than the 20,000 bytes allowed: refusing to expand it") as error:
        read_hcpcs(path)
    assert_located(error, f"{path}!HCPC2019_CONTR_ANWEB.txt", line=None, field="uncompressed size")


def test_byte_undefined_in_cp1252(tmp_path):
    lines = sample_lines()
    lines[10] = lines[10][:40] + b"\x81" + lines[10][41:]  # line 11, column 41: the long description
    path = write_lines(tmp_path / "bad.txt", lines)
    with pytest.raises(LoadError, match="byte 0x81 at column 41 is not cp1252 text") as error:
        read_hcpcs(path)
    assert_located(error, path, line=11, field="long_description")


def test_utf16_file(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes(SAMPLE.read_bytes().decode("cp1252").encode("utf-16"))
    with pytest.raises(LoadError, match="UTF-16") as error:
        read_hcpcs(path)
    assert_located(error, path, line=1, field="encoding")


def test_missing_file(tmp_path):
    with pytest.raises(LoadError, match="cannot read the file") as error:
        read_hcpcs(tmp_path / "nowhere.zip")
    assert error.value.path == str(tmp_path / "nowhere.zip")


def test_error_message_in_a_zip_member_names_the_member(tmp_path):
    lines = sample_lines()
    lines[10] = lines[10][:276] + b"20191332" + lines[10][284:]
    path = anweb_zip(tmp_path / "2019.zip", b"\r\n".join(lines))
    with pytest.raises(LoadError) as error:
        read_hcpcs(path)
    assert_located(error, f"{path}!HCPC2019_CONTR_ANWEB.txt", line=11, field="action_effective_date")
