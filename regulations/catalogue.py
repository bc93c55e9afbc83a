"""The rule catalogue: regulations and their yearly HH PPS constants, read from YAML.

The YAML is read strictly: every scalar stays text until this module reads it (no YAML float ever
touches a rate), a key given twice in one mapping is an error (PyYAML would keep the last one),
unknown keys are errors, and dates must be ``YYYY-MM-DD``. Every error is a ``LoadError`` naming
the file, the line and the key path (``regulations[3].published``).

Layout of the file (see ``hhpps_rules.yaml``)::

    regulations:
      - id: CMS-1780-F                 # the agency's document id, unique
        kind: hh_pps_rule              # one of KINDS
        title: ...
        document_number: 2023-24455    # Federal Register document number, when published there
        citation: 88 FR 77676          # where to read it
        published: 2023-11-13          # knowledge time: when the public could know it
        effective: 2024-01-01          # effective time
        corrects: CMS-1766-F           # for a correction notice: the id it corrects
        supersedes: CMS-1780-F         # a loaded entry that replaces an entry already known
        url: ...
        confirmed: true                # were the fields above checked against the source text
        note: ...                      # what was checked, where, and what is still open
        constants:                     # hh_pps_rule only: the yearly constants (CONSTANT_NAMES)
          rate_30_day: {value: "2038.13", citation: ..., confirmed: false, note: ...}

A constant whose ``value`` is ``none`` does not apply that year (no OT add-on before CY2022, no rural
add-on from CY2023): it still carries the citation that says so. A constant left out of the block is
*unknown*: no source giving it was found. The knowledge base then refuses every question that needs
it (``kb.parameters``) and says how to add it, rather than guess.

Entries loaded from other files (``hhkb load CMS-1828-F.yaml``) join the package's entries through
:func:`merge`: an entry that repeats a known entry's id, or the effective date of a known rule with
constants, must say the same thing, or say which entry it ``supersedes`` (with a ``note`` on why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping


from loaders.errors import LoadError
from loaders.strict_yaml import YamlList, YamlMapping, parse_document, read_text, starts_with_key

DEFAULT_PATH = Path(__file__).with_name("hhpps_rules.yaml")

#: What an entry is.
KINDS: Mapping[str, str] = MappingProxyType(
    {
        "hh_pps_rule": "HH PPS annual payment rule (Federal Register)",
        "correction": "correction notice to a published rule",
        "notice": "Federal Register notice",
        "demonstration": "CMS demonstration programme",
        "statute": "Act of Congress",
        "manual": "CMS manual chapter",
        "cms_source": "recurring CMS data release",
    }
)

#: The yearly HH PPS constants a rule sets, in the order a report lists them.
CONSTANT_NAMES: tuple[str, ...] = (
    "rate_30_day",
    "rate_30_day_no_quality",
    "labor_share",
    "fdl_ratio",
    "loss_sharing_ratio",
    "lupa_addon_sn",
    "lupa_addon_pt",
    "lupa_addon_slp",
    "lupa_addon_ot",
    "rural_addon_a",
    "rural_addon_b",
    "rural_addon_c",
    "outlier_cap_ratio",
    "late_noa_grace_days",
)

_ENTRY_KEYS = {
    "id": True,  # True: required
    "kind": True,
    "title": True,
    "document_number": False,
    "citation": False,
    "published": False,
    "effective": False,
    "corrects": False,
    "supersedes": False,
    "url": False,
    "confirmed": True,
    "note": False,
    "constants": False,
}
_VALUE_KEYS = {"value": True, "citation": True, "confirmed": True, "note": False}
_TOP_KEYS = {"regulations": True}
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class CitedValue:
    """A value with where it comes from. ``value`` is ``None`` when the item does not apply."""

    value: Decimal | None
    citation: str
    confirmed: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Regulation:
    """One catalogue entry. ``published`` is knowledge time, ``effective`` effective time."""

    document_id: str
    kind: str
    title: str
    document_number: str | None
    citation: str | None
    published: date | None
    effective: date | None
    corrects: str | None
    url: str | None
    confirmed: bool
    note: str
    constants: Mapping[str, CitedValue] = field(default_factory=lambda: MappingProxyType({}))
    line: int = 0
    supersedes: str | None = None
    origin: str = ""  # the file the entry was read from
    key_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    where: str = ""  # the entry's key path in its file (``regulations[2]``)

    def stated(self) -> tuple:
        """What the entry says, for comparing two entries (not where it was written)."""
        return tuple((name, getattr(self, name)) for name in _STATED_FIELDS)

    def key_line(self, key: str) -> int:
        """The line a key (``published``, ``constants.labor_share``) was written on, else the entry's."""
        return self.key_lines.get(key, self.line)


_STATED_FIELDS = ("document_id", "kind", "title", "document_number", "citation", "published", "effective",
                  "corrects", "url", "confirmed", "note", "constants", "supersedes")


@dataclass(frozen=True, slots=True)
class RateYear:
    """The HH PPS constants in force from ``effective_from``, as one rule set them. A constant no
    source gave is ``None`` here (``missing`` names them); one that does not apply that year is a
    ``CitedValue`` whose value is ``None``."""

    effective_from: date
    rule: str
    rate_30_day: CitedValue | None = None
    rate_30_day_no_quality: CitedValue | None = None
    labor_share: CitedValue | None = None
    fdl_ratio: CitedValue | None = None
    loss_sharing_ratio: CitedValue | None = None
    lupa_addon_sn: CitedValue | None = None
    lupa_addon_pt: CitedValue | None = None
    lupa_addon_slp: CitedValue | None = None
    lupa_addon_ot: CitedValue | None = None
    rural_addon_a: CitedValue | None = None
    rural_addon_b: CitedValue | None = None
    rural_addon_c: CitedValue | None = None
    outlier_cap_ratio: CitedValue | None = None
    late_noa_grace_days: CitedValue | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        """The constants no source gave for this year, in ``CONSTANT_NAMES`` order."""
        return tuple(name for name in CONSTANT_NAMES if getattr(self, name) is None)


assert tuple(f.name for f in fields(RateYear))[2:] == CONSTANT_NAMES


def missing_constants_message(year: int, names: tuple[str, ...], rule: str | None) -> str:
    """Why a question about ``year`` cannot be answered, and how to add what is missing."""
    said = f"{rule} (the rule in force) does not give them" if rule else "no rule in the catalogue takes effect that year"
    entry = (f"an entry 'id: {rule}' with 'supersedes: {rule}', a note saying where the figures come from,"
             if rule else f"an hh_pps_rule entry (id, title, citation, published, effective: {year}-01-01, confirmed),")
    return (
        f"the HH PPS constants for CY{year} are unknown: {', '.join(names)} ({said}); hhkb does not guess "
        f"them. Write them from the rule's text into a YAML file in the catalogue's format and load it with "
        f"'hhkb load FILE.yaml': under 'regulations:', {entry} and under 'constants:' one line per figure, e.g. "
        f"'{names[0]}: {{value: \"<figure>\", citation: \"<FR citation>\", confirmed: false, note: \"<source>\"}}'"
    )


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Catalogue entries. ``superseded`` keeps each (replaced entry, entry that replaced it) pair."""

    path: str
    rules: tuple[Regulation, ...]
    superseded: tuple[tuple[Regulation, Regulation], ...] = ()

    def get(self, document_id: str) -> Regulation:
        for rule in self.rules:
            if rule.document_id == document_id:
                return rule
        raise KeyError(document_id)

    def rate_years(self) -> tuple[RateYear, ...]:
        """Every HH PPS rule with constants (some may be unknown: ``RateYear.missing``), by
        effective date."""
        years = [
            RateYear(rule.effective, rule.document_id, **dict(rule.constants))  # type: ignore[arg-type]
            for rule in self.rules
            if rule.kind == "hh_pps_rule" and rule.constants
        ]
        return tuple(sorted(years, key=lambda year: year.effective_from))

    def rate_year(self, on: date) -> RateYear:
        """The constants in force on a date: the rule with the latest effective date on or
        before it. Raises ``LookupError`` for a date before the first rule."""
        chosen = None
        for year in self.rate_years():
            if year.effective_from <= on:
                chosen = year
        if chosen is None:
            raise LookupError(f"no HH PPS rate year in force on {on.isoformat()}")
        return chosen


# --- loading ---------------------------------------------------------------------------------


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue file (default: the package's ``hhpps_rules.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    return parse_catalogue(read_text(path), path)


def parse_catalogue(text: str, path: str | Path = "<text>", *, check_references: bool = True) -> Catalogue:
    """Read a catalogue's text. ``check_references=False`` for a file that adds to another
    catalogue: its ``corrects`` and ``supersedes`` may name entries of that catalogue, and
    :func:`merge` checks them."""
    document = parse_document(text, path)
    if not isinstance(document, YamlMapping):
        raise LoadError(path, "the catalogue must be a mapping with a 'regulations' list", line=1)
    _check_keys(path, document, _TOP_KEYS, "")
    entries = document["regulations"]
    if not isinstance(entries, YamlList) or not entries:
        raise LoadError(
            path, "'regulations' must be a non-empty list", line=document.lines["regulations"],
            field="regulations",
        )
    rules: list[Regulation] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"regulations[{index}]"
        if not isinstance(entry, YamlMapping):
            raise LoadError(path, "an entry must be a mapping", line=entries.line, field=where)
        rule = _read_entry(path, entry, where)
        if rule.document_id in seen:
            raise LoadError(
                path,
                f"id {rule.document_id!r} is listed twice (first on line {seen[rule.document_id]})",
                line=entry.lines["id"],
                field=f"{where}.id",
            )
        seen[rule.document_id] = entry.lines["id"]
        rules.append(rule)
    if check_references:
        _check_references(path, rules)
    _check_effective_dates(path, rules)
    return Catalogue(path=str(path), rules=tuple(rules))


def _read_entry(path: str | Path, entry: YamlMapping, where: str) -> Regulation:
    _check_keys(path, entry, _ENTRY_KEYS, where)
    kind = _text(path, entry, "kind", where)
    if kind not in KINDS:
        raise LoadError(
            path,
            f"unknown kind {kind!r}: use one of {', '.join(KINDS)}",
            line=entry.lines["kind"],
            field=f"{where}.kind",
        )
    constants: dict[str, CitedValue] = {}
    if "constants" in entry:
        if kind != "hh_pps_rule":
            raise LoadError(
                path, "only an hh_pps_rule entry carries constants", line=entry.lines["constants"],
                field=f"{where}.constants",
            )
        constants = _read_constants(path, entry, f"{where}.constants")
    effective = _date(path, entry, "effective", where)
    if kind == "hh_pps_rule" and constants and effective is None:
        raise LoadError(
            path, "a rule with constants needs an effective date", line=entry.line,
            field=f"{where}.effective",
        )
    supersedes = _optional_text(path, entry, "supersedes", where)
    if supersedes is not None and not _optional_text(path, entry, "note", where):
        raise LoadError(
            path, f"an entry that supersedes {supersedes} needs a note saying why and where its figures come from",
            line=entry.lines["supersedes"], field=f"{where}.note",
        )
    key_lines = {key: line for key, line in entry.lines.items()}
    if isinstance(entry.get("constants"), YamlMapping):
        block = entry["constants"]
        for name, line in block.lines.items():
            key_lines[f"constants.{name}"] = line
            item = block[name]
            if isinstance(item, YamlMapping):
                key_lines.update({f"constants.{name}.{key}": item_line for key, item_line in item.lines.items()})
    return Regulation(
        document_id=_text(path, entry, "id", where),
        kind=kind,
        title=_text(path, entry, "title", where),
        document_number=_optional_text(path, entry, "document_number", where),
        citation=_optional_text(path, entry, "citation", where),
        published=_date(path, entry, "published", where),
        effective=effective,
        corrects=_optional_text(path, entry, "corrects", where),
        url=_optional_text(path, entry, "url", where),
        confirmed=_boolean(path, entry, "confirmed", where),
        note=_optional_text(path, entry, "note", where) or "",
        constants=MappingProxyType(constants),
        line=entry.line,
        supersedes=supersedes,
        origin=str(path),
        key_lines=MappingProxyType(key_lines),
        where=where,
    )


def _read_constants(path: str | Path, entry: YamlMapping, where: str) -> dict[str, CitedValue]:
    block = entry["constants"]
    if not isinstance(block, YamlMapping):
        raise LoadError(path, "constants must be a mapping", line=entry.lines["constants"], field=where)
    _check_keys(path, block, {name: False for name in CONSTANT_NAMES}, where)  # one left out is unknown
    constants: dict[str, CitedValue] = {}
    for name in CONSTANT_NAMES:
        if name not in block:
            continue
        item = block[name]
        item_where = f"{where}.{name}"
        if not isinstance(item, YamlMapping):
            raise LoadError(
                path, "a constant is a mapping with value, citation, confirmed",
                line=block.lines[name], field=item_where,
            )
        _check_keys(path, item, _VALUE_KEYS, item_where)
        raw = _text(path, item, "value", item_where)
        if raw == "none":
            value = None
        elif _DECIMAL.fullmatch(raw):
            value = Decimal(raw)
        else:
            raise LoadError(
                path, f"not a decimal number (or none): {raw!r}", line=item.lines["value"],
                field=f"{item_where}.value",
            )
        constants[name] = CitedValue(
            value=value,
            citation=_text(path, item, "citation", item_where),
            confirmed=_boolean(path, item, "confirmed", item_where),
            note=_optional_text(path, item, "note", item_where) or "",
        )
    return constants


def _check_references(path: str | Path, rules: list[Regulation] | tuple[Regulation, ...],
                      known: set[str] | None = None) -> None:
    """Every ``corrects`` names an entry of ``rules`` (or of ``known``)."""
    ids = {rule.document_id for rule in rules} | (known or set())
    for rule in rules:
        if rule.corrects is not None and rule.corrects not in ids:
            raise LoadError(
                path, f"corrects {rule.corrects!r}, which is not in the catalogue",
                line=rule.key_line("corrects"), field=f"{rule.where}.corrects",
            )


def _check_effective_dates(path: str | Path, rules: list[Regulation]) -> None:
    first: dict[date, Regulation] = {}
    for rule in rules:
        if rule.kind != "hh_pps_rule" or not rule.constants:
            continue
        if rule.effective in first:
            raise LoadError(
                path, f"two rules with constants take effect on {rule.effective}: "
                      f"{first[rule.effective].document_id} and {rule.document_id}",
                line=rule.key_line("effective"), field=f"{rule.where}.effective",
            )
        first[rule.effective] = rule


# --- adding loaded entries ---------------------------------------------------------------------


def merge(base: Catalogue, added: Catalogue) -> Catalogue:
    """``base`` with the entries of ``added`` (a file loaded into a knowledge base).

    An added entry equal to a known entry of the same id changes nothing. One that differs from a
    known entry of the same id, or that takes effect on the same day as a known HH PPS rule with
    constants, is a ``LoadError`` (file, line, key) unless it names that entry in ``supersedes``:
    it then replaces it, and the pair is kept in ``superseded`` for the review.
    """
    rules = list(base.rules)
    superseded = list(base.superseded)
    for rule in added.rules:
        by_id = {known.document_id: known for known in rules}
        replaced = None
        if rule.supersedes is not None:
            replaced = by_id.get(rule.supersedes)
            if replaced is None:
                raise LoadError(
                    added.path, f"supersedes {rule.supersedes!r}, which is not in the catalogue",
                    line=rule.key_line("supersedes"), field=f"{rule.where}.supersedes",
                )
        if replaced is not None and replaced.stated() == rule.stated():
            continue  # the same file's entry loaded again under another name
        same_id = by_id.get(rule.document_id)
        if same_id is not None and same_id is not replaced:
            if same_id.stated() == rule.stated():
                continue
            key = _first_difference(same_id, rule)
            raise LoadError(
                added.path,
                f"{rule.document_id} is already in the catalogue ({_origin(same_id)}, line {same_id.line}) "
                f"with another {key}; an entry that replaces it says 'supersedes: {rule.document_id}' and why in "
                "a note",
                line=rule.key_line(key), field=f"{rule.where}.{key}",
            )
        if rule.kind == "hh_pps_rule" and rule.constants:
            for known in rules:
                if (known is not replaced and known.kind == "hh_pps_rule" and known.constants
                        and known.effective == rule.effective):
                    raise LoadError(
                        added.path,
                        f"{rule.document_id} takes effect on {rule.effective}, as {known.document_id} "
                        f"({_origin(known)}, line {known.line}) does, with constants of its own; an entry that "
                        f"replaces that rule's constants says 'supersedes: {known.document_id}' and why in a note",
                        line=rule.key_line("effective"), field=f"{rule.where}.effective",
                    )
        if replaced is not None:
            rules.remove(replaced)
            superseded.append((replaced, rule))
        rules.append(rule)
    _check_references(added.path, added.rules, known={rule.document_id for rule in rules})
    return Catalogue(path=base.path, rules=tuple(rules), superseded=tuple(superseded))


def _first_difference(known: Regulation, rule: Regulation) -> str:
    """The key path of the first thing two entries of one id say differently (the figures first)."""
    for constant in CONSTANT_NAMES:
        if known.constants.get(constant) != rule.constants.get(constant):
            return f"constants.{constant}"
    for name in _STATED_FIELDS:
        if name != "constants" and getattr(known, name) != getattr(rule, name):
            return {"document_id": "id"}.get(name, name)
    return "id"


def _origin(rule: Regulation) -> str:
    return "the package's catalogue" if rule.origin == str(DEFAULT_PATH) else f"loaded from {Path(rule.origin).name}"


def is_catalogue_file(path: Path) -> bool:
    """Whether a file looks like a catalogue: YAML text whose first key is ``regulations:``."""
    return starts_with_key(path, "regulations")


def _check_keys(path: str | Path, mapping: YamlMapping, allowed: dict[str, bool], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise LoadError(
                path,
                f"unknown key {key!r} (allowed: {', '.join(allowed)})",
                line=mapping.lines[key],
                field=f"{where}.{key}" if where else key,
            )
    for key, required in allowed.items():
        if required and key not in mapping:
            raise LoadError(
                path, f"missing key {key!r}", line=mapping.line, field=f"{where}.{key}" if where else key
            )


def _scalar(path: str | Path, mapping: YamlMapping, key: str, where: str) -> Any:
    value = mapping[key]
    if not isinstance(value, str):
        raise LoadError(path, "expected a single value", line=mapping.lines[key], field=f"{where}.{key}")
    return value


def _text(path: str | Path, mapping: YamlMapping, key: str, where: str) -> str:
    value = _scalar(path, mapping, key, where).strip()
    if not value:
        raise LoadError(path, "empty value", line=mapping.lines[key], field=f"{where}.{key}")
    return value


def _optional_text(path: str | Path, mapping: YamlMapping, key: str, where: str) -> str | None:
    if key not in mapping:
        return None
    value = _scalar(path, mapping, key, where).strip()
    return value or None


def _boolean(path: str | Path, mapping: YamlMapping, key: str, where: str) -> bool:
    value = _text(path, mapping, key, where)
    if value not in ("true", "false"):
        raise LoadError(
            path, f"expected true or false, not {value!r}", line=mapping.lines[key], field=f"{where}.{key}"
        )
    return value == "true"


def _date(path: str | Path, mapping: YamlMapping, key: str, where: str) -> date | None:
    text = _optional_text(path, mapping, key, where)
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise LoadError(
            path, f"not a date YYYY-MM-DD: {text!r}", line=mapping.lines[key], field=f"{where}.{key}"
        ) from None
