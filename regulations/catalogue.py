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
        url: ...
        confirmed: true                # were the fields above checked against the source text
        note: ...                      # what was checked, where, and what is still open
        constants:                     # hh_pps_rule only: the yearly constants (CONSTANT_NAMES)
          rate_30_day: {value: "2038.13", citation: ..., confirmed: false, note: ...}

A constant whose ``value`` is ``none`` does not apply that year (no OT add-on before CY2022, no rural
add-on from CY2023): it still carries the citation that says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from loaders.errors import LoadError
from regulations.strict_yaml import YamlKeyError, YamlList, YamlMapping, load_strict

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


@dataclass(frozen=True, slots=True)
class RateYear:
    """The HH PPS constants in force from ``effective_from``, as one rule set them."""

    effective_from: date
    rule: str
    rate_30_day: CitedValue
    rate_30_day_no_quality: CitedValue
    labor_share: CitedValue
    fdl_ratio: CitedValue
    loss_sharing_ratio: CitedValue
    lupa_addon_sn: CitedValue
    lupa_addon_pt: CitedValue
    lupa_addon_slp: CitedValue
    lupa_addon_ot: CitedValue
    rural_addon_a: CitedValue
    rural_addon_b: CitedValue
    rural_addon_c: CitedValue
    outlier_cap_ratio: CitedValue
    late_noa_grace_days: CitedValue


assert tuple(f.name for f in fields(RateYear))[2:] == CONSTANT_NAMES


@dataclass(frozen=True, slots=True)
class Catalogue:
    path: str
    rules: tuple[Regulation, ...]

    def get(self, document_id: str) -> Regulation:
        for rule in self.rules:
            if rule.document_id == document_id:
                return rule
        raise KeyError(document_id)

    def rate_years(self) -> tuple[RateYear, ...]:
        """Every HH PPS rule with constants, by effective date."""
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
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise LoadError(path, f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    return parse_catalogue(text, path)


def parse_catalogue(text: str, path: str | Path = "<text>") -> Catalogue:
    try:
        document = load_strict(text)
    except YamlKeyError as exc:
        raise LoadError(path, exc.message, line=exc.line, field=exc.key) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise LoadError(path, f"not valid YAML: {exc.problem}", line=line) from exc
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
    _check_references(path, rules, entries)
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
    )


def _read_constants(path: str | Path, entry: YamlMapping, where: str) -> dict[str, CitedValue]:
    block = entry["constants"]
    if not isinstance(block, YamlMapping):
        raise LoadError(path, "constants must be a mapping", line=entry.lines["constants"], field=where)
    _check_keys(path, block, {name: True for name in CONSTANT_NAMES}, where)
    constants: dict[str, CitedValue] = {}
    for name in CONSTANT_NAMES:
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


def _check_references(path: str | Path, rules: list[Regulation], entries: YamlList) -> None:
    ids = {rule.document_id for rule in rules}
    for index, (rule, entry) in enumerate(zip(rules, entries)):
        if rule.corrects is not None and rule.corrects not in ids:
            raise LoadError(
                path, f"corrects {rule.corrects!r}, which is not in the catalogue",
                line=entry.lines["corrects"], field=f"regulations[{index}].corrects",
            )
    effective = [(r.effective, r.document_id) for r in rules if r.kind == "hh_pps_rule" and r.constants]
    dates = [d for d, _ in effective]
    for day, document_id in effective:
        if dates.count(day) > 1:
            raise LoadError(path, f"two rules with constants take effect on {day}", field=document_id)


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
