"""A reader of the Federal Register's XML for one published document (rule, proposed rule,
notice), as GPO's bulk data and FederalRegister.gov's "full text XML" give it.

Elements read (GPO "Federal Register XML Rendition" user guide): an optional ``FEDREG`` wrapper
with ``VOL``, ``NO`` and ``DATE`` (the issue); the document element ``RULE`` / ``PRORULE`` /
``NOTICE``; in its ``PREAMB``: ``PRTPAGE P="..."`` (printed page), ``AGENCY``, ``SUBAGY``, ``CFR``,
``DEPDOC`` (the agency's docket ids, ``[CMS-1780-F]``), ``RIN``, ``SUBJECT`` (the title), ``ACT``,
``SUM``, ``EFFDATE`` or ``DATES``; after it ``SUPLINF`` and ``GPOTABLE`` tables (``TTITLE``,
``BOXHD``/``CHED`` column heads, ``ROW``/``ENT`` cells); ``FRDOC`` (``[FR Doc. 2023-24455 Filed
11-1-23; 8:45 am]``).

The parser is hardened: no entity resolution, no DTD loading, no network, no huge trees. A
document that declares entities or an external DTD is refused with a ``LoadError`` before it is
parsed, so nothing it names (``file:///etc/passwd``, a billion nested entities) is ever read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from loaders.errors import LoadError

DOCUMENT_TAGS = ("RULE", "PRORULE", "NOTICE")

_DOCTYPE = re.compile(rb"<!DOCTYPE\b(?P<body>[^>\[]*)(?P<subset>\[)?", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY\b", re.IGNORECASE)
_DOCKET_ID = re.compile(r"[A-Z]{2,}-\d+-[A-Z0-9]+")
_FR_DOC = re.compile(r"FR\s+Doc\.?\s*(?:No:?\s*)?([A-Z]?\d{0,4}-?\d+-?\d*)")
_EFFECTIVE = re.compile(
    r"effective\s+(?:on\s+|date:?\s+|as\s+of\s+)?(?:[a-z ,]+\s)?"
    r"((?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r"\s+\d{1,2},\s+\d{4})",
    re.IGNORECASE,
)
_HH_PPS_TITLE = re.compile(r"home\s+health\s+(?:\(HH\)\s+)?prospective\s+payment\s+system", re.IGNORECASE)
_ISSUE_DATE = re.compile(
    r"((?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r"\s+\d{1,2},\s+\d{4})"
)


@dataclass(frozen=True, slots=True)
class FederalRegisterTable:
    """One ``GPOTABLE``: its title, column heads and rows of cell text."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class FederalRegisterDocument:
    path: str
    document_type: str  # RULE, PRORULE or NOTICE
    docket_ids: tuple[str, ...]  # from DEPDOC: ("CMS-1780-F",) ...
    fr_document_number: str | None  # from FRDOC: "2023-24455"
    rin: str | None
    agency: str | None
    subagency: str | None
    cfr: str | None
    title: str
    action: str | None
    summary: str | None
    dates_text: str | None
    effective_date: date | None
    volume: int | None
    first_page: int | None
    publication_date: date | None
    tables: tuple[FederalRegisterTable, ...]

    @property
    def document_id(self) -> str | None:
        """The agency's id of the document (the first docket id), e.g. ``CMS-1780-F``."""
        return self.docket_ids[0] if self.docket_ids else None

    @property
    def citation(self) -> str | None:
        """``88 FR 77676`` when both the volume and the first printed page are known."""
        if self.volume is None or self.first_page is None:
            return None
        return f"{self.volume} FR {self.first_page}"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def read_federal_register_xml(path: str | Path) -> FederalRegisterDocument:
    """Read one Federal Register document from its XML file; bad input raises ``LoadError``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read the file: {exc.strerror}") from exc
    return parse_federal_register_xml(data, path)


def parse_federal_register_xml(data: bytes, path: str | Path = "<bytes>") -> FederalRegisterDocument:
    _refuse_declarations(data, path)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise LoadError(path, f"malformed XML: {exc.msg}", line=line) from exc
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.system_url or tree.docinfo.public_id:
        raise LoadError(path, "refused: the document declares a DTD", line=1)
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise LoadError(path, "refused: the document uses entity references", line=1)

    document = root if root.tag in DOCUMENT_TAGS else _find_document(root, path)
    preamble = document.find("PREAMB")
    if preamble is None:
        raise LoadError(path, "no PREAMB element", line=document.sourceline, field=document.tag)
    title = _text_of(preamble.find("SUBJECT"))
    if not title:
        raise LoadError(path, "no SUBJECT (title) in the preamble", line=preamble.sourceline, field="SUBJECT")

    dates_element = preamble.find("EFFDATE")
    if dates_element is None:
        dates_element = preamble.find("DATES")
    dates_text = _text_of(dates_element, skip_heads=True)
    volume = _volume(root, path)
    return FederalRegisterDocument(
        path=str(path),
        document_type=document.tag,
        docket_ids=tuple(_DOCKET_ID.findall(_text_of(preamble.find("DEPDOC")) or "")),
        fr_document_number=_fr_document_number(document),
        rin=_rin(_text_of(preamble.find("RIN"))),
        agency=_text_of(preamble.find("AGENCY")),
        subagency=_text_of(preamble.find("SUBAGY")),
        cfr=_text_of(preamble.find("CFR")),
        title=title,
        action=_text_of(preamble.find("ACT"), skip_heads=True),
        summary=_text_of(preamble.find("SUM"), skip_heads=True),
        dates_text=dates_text,
        effective_date=_effective_date(dates_text),
        volume=volume,
        first_page=_first_page(document, path),
        publication_date=_publication_date(root),
        tables=tuple(_table(element) for element in document.iter("GPOTABLE")),
    )


def catalogue_entry_skeleton(document: FederalRegisterDocument) -> dict[str, Any]:
    """A catalogue entry (``regulations/*.yaml``) for a document, ready for ``yaml.safe_dump``.

    Every value is text, as the catalogue reads it. Yearly constants are not in the XML's
    structure in any dependable way: a person adds them, with their citations, and sets
    ``confirmed`` once the fields have been checked against the published text.
    """
    action = (document.action or "").lower()
    if "correction" in action:
        kind = "correction"
    elif document.document_type == "RULE" and _HH_PPS_TITLE.search(document.title):
        kind = "hh_pps_rule"
    else:
        kind = "notice"
    entry: dict[str, Any] = {
        "id": document.document_id or (document.fr_document_number or "UNKNOWN"),
        "kind": kind,
        "title": document.title,
    }
    optional = {
        "document_number": document.fr_document_number,
        "citation": document.citation,
        "published": document.publication_date.isoformat() if document.publication_date else None,
        "effective": document.effective_date.isoformat() if document.effective_date else None,
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    entry["confirmed"] = "false"
    notes = [f"Skeleton read from {Path(document.path).name}"]
    if document.action:
        notes.append(f"action: {document.action.rstrip('.')}")
    if document.dates_text and document.effective_date is None:
        notes.append(f"dates (not parsed): {document.dates_text}")
    entry["note"] = "; ".join(notes) + "."
    return entry


# --- helpers ---------------------------------------------------------------------------------


def _refuse_declarations(data: bytes, path: str | Path) -> None:
    """Refuse entity declarations and external or internal DTDs before the parser sees them.

    UTF-16/32 documents are checked after decoding so that the check cannot be sidestepped.
    """
    head = data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        try:
            head = data.decode("utf-32" if data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00") else "utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise LoadError(path, f"undecodable XML: {exc.reason}") from exc
    entity = _ENTITY.search(head)
    if entity:
        line = head.count(b"\n", 0, entity.start()) + 1
        raise LoadError(path, "refused: the document declares entities", line=line, field="!ENTITY")
    doctype = _DOCTYPE.search(head)
    if doctype:
        body = doctype.group("body").upper()
        if doctype.group("subset") or b"SYSTEM" in body or b"PUBLIC" in body:
            line = head.count(b"\n", 0, doctype.start()) + 1
            raise LoadError(path, "refused: the document declares a DTD", line=line, field="!DOCTYPE")


def _find_document(root: etree._Element, path: str | Path) -> etree._Element:
    found = [element for element in root.iter(*DOCUMENT_TAGS)]
    if not found:
        raise LoadError(
            path, f"no {', '.join(DOCUMENT_TAGS)} element under <{root.tag}>", line=root.sourceline,
            field=str(root.tag),
        )
    if len(found) > 1:
        raise LoadError(
            path, f"{len(found)} documents in one file: give one document's XML",
            line=found[1].sourceline, field=found[1].tag,
        )
    return found[0]


def _text_of(element: etree._Element | None, *, skip_heads: bool = False) -> str | None:
    """The element's text with whitespace folded; ``skip_heads`` leaves out ``HD`` headings
    ("ACTION:", "DATES:")."""
    if element is None:
        return None
    parts: list[str] = []
    _collect(element, parts, skip_heads)
    text = " ".join(" ".join(parts).split())
    return text or None


def _collect(element: etree._Element, parts: list[str], skip_heads: bool) -> None:
    if element.text:
        parts.append(element.text)
    for child in element:
        if not (skip_heads and child.tag == "HD"):
            _collect(child, parts, skip_heads)
        if child.tail:
            parts.append(child.tail)


def _rin(text: str | None) -> str | None:
    if not text:
        return None
    return re.sub(r"^RINs?\s+", "", text).strip() or None


def _fr_document_number(document: etree._Element) -> str | None:
    frdoc = _text_of(document.find("FRDOC"))
    if not frdoc:
        return None
    match = _FR_DOC.search(frdoc)
    return match.group(1).replace("\u2013", "-") if match else None


def _effective_date(dates_text: str | None) -> date | None:
    if not dates_text:
        return None
    match = _EFFECTIVE.search(dates_text.replace("\u2013", "-"))
    if not match:
        return None
    try:
        return datetime.strptime(" ".join(match.group(1).split()), "%B %d, %Y").date()
    except ValueError:
        return None


def _volume(root: etree._Element, path: str | Path) -> int | None:
    element = root.find("VOL") if root.tag == "FEDREG" else None
    if element is None:
        return None
    text = _text_of(element) or ""
    if not text.isdigit():
        raise LoadError(path, f"volume is not a number: {text!r}", line=element.sourceline, field="VOL")
    return int(text)


def _first_page(document: etree._Element, path: str | Path) -> int | None:
    page = document.find(".//PRTPAGE")
    if page is None:
        return None
    value = page.get("P", "")
    if not value.isdigit():
        raise LoadError(path, f"printed page is not a number: {value!r}", line=page.sourceline, field="PRTPAGE")
    return int(value)


def _publication_date(root: etree._Element) -> date | None:
    if root.tag != "FEDREG":
        return None
    element = root.find("DATE")
    match = _ISSUE_DATE.search(_text_of(element) or "")
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%B %d, %Y").date()
    except ValueError:
        return None


def _table(element: etree._Element) -> FederalRegisterTable:
    header = tuple(_text_of(ched) or "" for ched in element.iter("CHED"))
    rows = tuple(
        tuple(_text_of(entry) or "" for entry in row.findall("ENT")) for row in element.iter("ROW")
    )
    return FederalRegisterTable(title=_text_of(element.find("TTITLE")) or "", header=header, rows=rows)
