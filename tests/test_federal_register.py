"""Federal Register XML: the sample parses; hostile and malformed documents are refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from loaders.errors import LoadError
from loaders.federal_register import (
    catalogue_entry_skeleton,
    parse_federal_register_xml,
    read_federal_register_xml,
)
from regulations.catalogue import parse_catalogue

SAMPLE = Path(__file__).parent / "fixtures" / "federal_register" / "cms-1780-f-sample.xml"

BARE_RULE = b"""<?xml version="1.0"?>
<RULE>
  <PREAMB>
    <AGENCY TYPE="S">DEPARTMENT OF HEALTH AND HUMAN SERVICES</AGENCY>
    <DEPDOC>[CMS-1730-F, CMS-1744-IFC, and CMS-5531-IFC]</DEPDOC>
    <SUBJECT>Medicare and Medicaid Programs; CY 2021 Home Health Prospective Payment System Rate Update</SUBJECT>
    <ACT><HD SOURCE="HED">ACTION:</HD><P>Final rule.</P></ACT>
    <DATES><HD SOURCE="HED">DATES:</HD><P>These regulations take effect when CMS says so.</P></DATES>
  </PREAMB>
  <FRDOC>[FR Doc. 2020-24146 Filed 10-29-20; 4:15 pm]</FRDOC>
</RULE>
"""


def test_sample_parses():
    document = read_federal_register_xml(SAMPLE)
    assert document.document_type == "RULE"
    assert document.document_id == "CMS-1780-F" and document.docket_ids == ("CMS-1780-F",)
    assert document.fr_document_number == "2023-24455"
    assert document.rin == "0938-AV03"
    assert document.agency == "DEPARTMENT OF HEALTH AND HUMAN SERVICES"
    assert document.subagency == "Centers for Medicare & Medicaid Services"
    assert document.title.startswith("Medicare Program; Calendar Year (CY) 2024 Home Health (HH)")
    assert "\n" not in document.title
    assert document.action == "Final rule."
    assert document.dates_text == "Effective date: These regulations are effective on January 1, 2024."
    assert document.effective_date == date(2024, 1, 1)
    assert document.publication_date == date(2023, 11, 13)
    assert document.citation == "88 FR 77676"
    (table,) = document.tables
    assert table.header == ("Quality data", "30-day payment")
    assert table.rows == (("Submitted", "$2,038.13"), ("Not submitted", "$1,998.56"))


def test_bare_rule_without_issue_wrapper():
    document = parse_federal_register_xml(BARE_RULE, "bare.xml")
    assert document.docket_ids == ("CMS-1730-F", "CMS-1744-IFC", "CMS-5531-IFC")
    assert document.fr_document_number == "2020-24146"
    assert document.citation is None and document.publication_date is None
    assert document.effective_date is None and document.tables == ()


def test_skeleton_is_a_valid_catalogue_entry():
    entry = catalogue_entry_skeleton(read_federal_register_xml(SAMPLE))
    assert entry["id"] == "CMS-1780-F" and entry["kind"] == "hh_pps_rule"
    assert entry["citation"] == "88 FR 77676" and entry["document_number"] == "2023-24455"
    assert (entry["published"], entry["effective"]) == ("2023-11-13", "2024-01-01")
    text = yaml.safe_dump({"regulations": [entry]}, sort_keys=False)
    (rule,) = parse_catalogue(text, "skeleton.yaml").rules
    assert rule.document_id == "CMS-1780-F" and rule.effective == date(2024, 1, 1)
    assert rule.confirmed is False and rule.constants == {}
    bare = catalogue_entry_skeleton(parse_federal_register_xml(BARE_RULE, "bare.xml"))
    assert "effective" not in bare and "dates (not parsed)" in bare["note"]


# --- hostile documents: refused before anything they name is read ----------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE RULE [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<RULE><PREAMB><SUBJECT>&lol9;</SUBJECT></PREAMB></RULE>
"""


def _external_entity(target: Path) -> bytes:
    return (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE RULE [ <!ENTITY secret SYSTEM "' + target.as_uri().encode() + b'"> ]>\n'
        b"<RULE><PREAMB><SUBJECT>&secret;</SUBJECT></PREAMB></RULE>\n"
    )


def _refused(tmp_path, data: bytes) -> LoadError:
    path = tmp_path / "hostile.xml"
    path.write_bytes(data)
    with pytest.raises(LoadError) as error:
        read_federal_register_xml(path)
    assert error.value.path == str(path)
    assert "refused" in error.value.message
    return error.value


def test_billion_laughs_is_refused(tmp_path):
    error = _refused(tmp_path, BILLION_LAUGHS)
    assert (error.line, error.field) == (3, "!ENTITY")


def test_external_entity_is_refused_without_reading_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    error = _refused(tmp_path, _external_entity(secret))
    assert "TOP SECRET" not in str(error)
    assert error.line == 2
    passwd = _refused(tmp_path, _external_entity(Path("/etc/passwd")))
    assert "root:" not in str(passwd)


def test_external_dtd_is_refused(tmp_path):
    error = _refused(
        tmp_path, b'<?xml version="1.0"?>\n<!DOCTYPE RULE SYSTEM "http://example.invalid/fr.dtd">\n<RULE/>\n'
    )
    assert (error.line, error.field) == (2, "!DOCTYPE")


def test_entity_declaration_hidden_in_utf16_is_refused(tmp_path):
    _refused(tmp_path, BILLION_LAUGHS.replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"').decode().encode("utf-16"))


def test_hardened_parser_never_expands_entities_even_if_the_check_is_bypassed(tmp_path, monkeypatch):
    import loaders.federal_register as module

    monkeypatch.setattr(module, "_refuse_declarations", lambda data, path: None)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    with pytest.raises(LoadError) as error:
        parse_federal_register_xml(_external_entity(secret), "bypassed.xml")
    assert "refused" in error.value.message and "TOP SECRET" not in str(error.value)


# --- malformed and incomplete documents ---------------------------------------------------------


def test_malformed_xml_names_the_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_bytes(b'<?xml version="1.0"?>\n<RULE>\n  <PREAMB>\n    <SUBJECT>Title</SUBJEC>\n  </PREAMB>\n</RULE>\n')
    with pytest.raises(LoadError) as error:
        read_federal_register_xml(path)
    assert error.value.path == str(path) and error.value.line == 4
    assert "malformed XML" in str(error.value) and "line 4" in str(error.value)


def test_document_without_a_rule(tmp_path):
    with pytest.raises(LoadError) as error:
        parse_federal_register_xml(b"<FEDREG><VOL>88</VOL></FEDREG>", "empty.xml")
    assert error.value.field == "FEDREG" and error.value.line == 1


def test_rule_without_a_title():
    with pytest.raises(LoadError) as error:
        parse_federal_register_xml(b"<RULE>\n<PREAMB>\n<AGENCY>X</AGENCY>\n</PREAMB>\n</RULE>", "untitled.xml")
    assert (error.value.line, error.value.field) == (2, "SUBJECT")
