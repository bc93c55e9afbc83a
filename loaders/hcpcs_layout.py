"""The CMS HCPCS Level II contractor record layout, as data.

Transcribed from the official layout shipped beside each release ("CMS RIF REPORT",
``HCPCS2019_recordlayout.txt``; the 2017 and 2018 layouts give the same positions). Record length
320; positions are 1-based and inclusive, as the layout prints them. A field that ``occurs`` more
than once is that many equal slots side by side (pricing indicator: 4 slots of 2 columns).

``kind`` says how the reader treats the columns:

- ``code``: stripped text that never holds inner spaces (codes, indicators, statute numbers);
- ``text``: stripped text with runs of whitespace folded to one space (descriptions);
- ``number``: an unsigned integer (the sequence number);
- ``date``: ``YYYYMMDD``, blank when absent;
- ``record_id``: the record identification code (3, 4, 7 or 8, see ``RECORD_IDS``);
- ``redefines``: an alternative view of columns another field already covers (not read);
- ``filler``: unused columns (not read).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_LENGTH = 320


@dataclass(frozen=True, slots=True)
class LayoutField:
    """One field of the record layout: its item number in the official layout and its columns."""

    item: int
    name: str
    start: int
    end: int
    kind: str
    occurs: int = 1

    @property
    def width(self) -> int:
        """Columns of one occurrence."""
        return (self.end - self.start + 1) // self.occurs

    @property
    def columns(self) -> slice:
        """The field's columns as a Python slice of a line (0-based, end exclusive)."""
        return slice(self.start - 1, self.end)


#: Every field of the official layout, in column order. Names are those of ``HcpcsRecord`` where
#: the record carries the field.
HCPCS_LAYOUT: tuple[LayoutField, ...] = (
    LayoutField(1, "code", 1, 5, "code"),
    LayoutField(2, "code_redefinition_group", 1, 5, "redefines"),
    LayoutField(3, "code_filler", 1, 3, "redefines"),  # blank for a modifier ...
    LayoutField(4, "modifier_code", 4, 5, "redefines"),  # ... whose 2 characters sit in 4-5
    LayoutField(5, "sequence_number", 6, 10, "number"),
    LayoutField(6, "record_identification_code", 11, 11, "record_id"),
    LayoutField(7, "long_description", 12, 91, "text"),
    LayoutField(8, "short_description", 92, 119, "text"),
    LayoutField(9, "pricing_indicators", 120, 127, "code", occurs=4),
    LayoutField(10, "multiple_pricing_indicator", 128, 128, "code"),
    LayoutField(11, "coverage_issues_refs", 129, 146, "code", occurs=3),
    LayoutField(12, "carriers_manual_refs", 147, 170, "code", occurs=3),
    LayoutField(13, "statute", 171, 180, "code"),
    LayoutField(14, "lab_certifications", 181, 204, "code", occurs=8),
    LayoutField(15, "cross_references", 205, 229, "code", occurs=5),
    LayoutField(16, "coverage_code", 230, 230, "code"),
    LayoutField(17, "asc_group", 231, 232, "code"),
    LayoutField(18, "asc_effective_date", 233, 240, "date"),
    LayoutField(19, "opps_group", 241, 243, "code"),  # "MOG payment group" in the layout
    LayoutField(20, "opps_payment_indicator", 244, 244, "code"),
    LayoutField(21, "opps_effective_date", 245, 252, "date"),
    LayoutField(22, "processing_note", 253, 256, "code"),
    LayoutField(23, "betos", 257, 259, "code"),
    LayoutField(24, "filler_260", 260, 260, "filler"),
    LayoutField(25, "type_of_service", 261, 265, "code", occurs=5),
    LayoutField(26, "anesthesia_base_units", 266, 268, "code"),  # NUM in the layout; kept as text
    LayoutField(27, "added_date", 269, 276, "date"),
    LayoutField(28, "action_effective_date", 277, 284, "date"),
    LayoutField(29, "termination_date", 285, 292, "date"),
    LayoutField(30, "action_code", 293, 293, "code"),
    LayoutField(31, "filler_294", 294, 320, "filler"),
)

LAYOUT_BY_NAME: dict[str, LayoutField] = {field.name: field for field in HCPCS_LAYOUT}

#: Record identification code -> (kind of code, is the first line of its record).
RECORD_IDS: dict[str, tuple[str, bool]] = {
    "3": ("procedure", True),
    "4": ("procedure", False),
    "7": ("modifier", True),
    "8": ("modifier", False),
}

#: Column headings of the CMS xlsx edition -> (layout field, occurrence index). The xlsx drops the
#: fillers and the redefinitions, and numbers the occurrences of repeated fields (PRICE1..PRICE4).
XLSX_COLUMNS: dict[str, tuple[str, int]] = {
    "HCPC": ("code", 0),
    "SEQNUM": ("sequence_number", 0),
    "RECID": ("record_identification_code", 0),
    "LONG DESCRIPTION": ("long_description", 0),
    "SHORT DESCRIPTION": ("short_description", 0),
    **{f"PRICE{n}": ("pricing_indicators", n - 1) for n in range(1, 5)},
    "MULT_PI": ("multiple_pricing_indicator", 0),
    **{f"CIM{n}": ("coverage_issues_refs", n - 1) for n in range(1, 4)},
    **{f"MCM{n}": ("carriers_manual_refs", n - 1) for n in range(1, 4)},
    "STATUTE": ("statute", 0),
    **{f"LABCERT{n}": ("lab_certifications", n - 1) for n in range(1, 9)},
    **{f"XREF{n}": ("cross_references", n - 1) for n in range(1, 6)},
    "COV": ("coverage_code", 0),
    "ASC_GRP": ("asc_group", 0),
    "ASC_DT": ("asc_effective_date", 0),
    "OPPS": ("opps_group", 0),
    "OPPS_PI": ("opps_payment_indicator", 0),
    "OPPS_DT": ("opps_effective_date", 0),
    "PROCNOTE": ("processing_note", 0),
    "BETOS": ("betos", 0),
    **{f"TOS{n}": ("type_of_service", n - 1) for n in range(1, 6)},
    "ANEST_BU": ("anesthesia_base_units", 0),
    "ADD DT": ("added_date", 0),
    "ACT EFF DT": ("action_effective_date", 0),
    "TERM DT": ("termination_date", 0),
    "ACTION CD": ("action_code", 0),
}

#: The xlsx SEQNUM has 4 digits where the layout has 5: "0010" is sequence number 00100.
XLSX_SEQUENCE_SCALE = 10
