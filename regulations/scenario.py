"""What-if scenarios: a named set of changes over a final rule year, read from strict YAML.

A scenario is what a proposed rule (or any assumption) would change: constants (the proposed
30-day rate), nothing else yet. Whatever the scenario does not state is taken from its base year's
final rule and tables, and every report says which parameters came from the scenario and which
were assumed from the final rule. A scenario is never in force: every output is labelled
"what-if: <id>, not in force".

Layout (``regulations/scenarios/CMS-1780-P.yaml``)::

    scenario:
      id: CMS-1780-P
      title: CY2024 HH PPS proposed rule
      base_year: 2024          # the final rule year whose tables and constants fill the rest
      published: 2023-06-30
      citation: ...
      confirmed: false
      note: ...
      constants:               # regulations.catalogue.CONSTANT_NAMES
        rate_30_day: {value: "1974.38", citation: ..., confirmed: false, note: ...}

Read like the catalogue: every error is a ``LoadError`` naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Mapping


from loaders.errors import LoadError
from regulations.catalogue import (
    CONSTANT_NAMES,
    CitedValue,
    _boolean,
    _check_keys,
    _date,
    _optional_text,
    _read_constants,
    _text,
)
from loaders.strict_yaml import YamlMapping, parse_document, read_text, starts_with_key

FOLDER = Path(__file__).with_name("scenarios")
_TOP_KEYS = {"scenario": True}
_KEYS = {"id": True, "title": True, "base_year": True, "published": False, "citation": True, "confirmed": True,
         "note": False, "constants": True}


@dataclass(frozen=True, slots=True)
class Scenario:
    scenario_id: str
    title: str
    base_year: int
    published: date | None
    citation: str
    confirmed: bool
    note: str
    constants: Mapping[str, CitedValue]
    origin: str = ""
    line: int = 0  # of its id

    @property
    def label(self) -> str:
        return f"what-if: {self.scenario_id}, not in force"

    def stated(self) -> tuple[str, ...]:
        """The constants the scenario gives, in catalogue order."""
        return tuple(name for name in CONSTANT_NAMES if name in self.constants)

    def assumed(self) -> tuple[str, ...]:
        """The constants taken from the base year's final rule."""
        return tuple(name for name in CONSTANT_NAMES if name not in self.constants)

    def apply(self, tables):
        """The base year's ``kb.parameters.YearTables`` with the scenario's constants in place."""
        replaced = {name: dataclasses.replace(value, citation=f"{value.citation} ({self.label})")
                    for name, value in self.constants.items()}
        rate_year = dataclasses.replace(tables.rate_year, rule=self.scenario_id, **replaced)
        return dataclasses.replace(tables, rate_year=rate_year)


def is_scenario_file(path: Path) -> bool:
    """Whether a file looks like a what-if scenario: YAML text whose first key is ``scenario:``."""
    return starts_with_key(path, "scenario")


def find_scenario(reference: str, extra: Mapping[str, str] = MappingProxyType({})) -> Scenario:
    """A scenario by path to a YAML file, by id among ``extra`` (id -> text of loaded files), or by id
    among the package's ``regulations/scenarios``. LookupError when there is none."""
    path = Path(reference)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_scenario(path)
    if reference in extra:
        return parse_scenario(extra[reference], reference)
    for candidate in sorted(FOLDER.glob("*.yaml")):
        scenario = load_scenario(candidate)
        if scenario.scenario_id == reference:
            return scenario
    known = sorted({*extra, *(load_scenario(p).scenario_id for p in FOLDER.glob("*.yaml"))})
    raise LookupError(f"no scenario {reference!r}: give a year, a scenario file, or one of {', '.join(known)}")


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    text = read_text(path)
    return parse_scenario(text, path)


def parse_scenario(text: str, path: str | Path = "<text>") -> Scenario:
    document = parse_document(text, path)
    if not isinstance(document, YamlMapping):
        raise LoadError(path, "the file must be a mapping with a 'scenario' entry", line=1)
    _check_keys(path, document, _TOP_KEYS, "")
    entry = document["scenario"]
    if not isinstance(entry, YamlMapping):
        raise LoadError(path, "'scenario' must be a mapping", line=document.lines["scenario"], field="scenario")
    where = "scenario"
    _check_keys(path, entry, _KEYS, where)
    base = _text(path, entry, "base_year", where)
    if not re.fullmatch(r"\d{4}", base):
        raise LoadError(path, f"base_year must be a year like 2024, not {base!r}", line=entry.lines["base_year"],
                        field=f"{where}.base_year")
    constants = _read_constants(path, entry, where)
    if not constants:
        raise LoadError(path, "a scenario must change at least one constant", line=entry.lines["constants"],
                        field=f"{where}.constants")
    for name, value in constants.items():
        if value.value is None or not isinstance(value.value, Decimal):
            raise LoadError(path, "a scenario's constant needs a value", line=entry["constants"].lines[name],
                            field=f"{where}.constants.{name}")
    return Scenario(
        scenario_id=_text(path, entry, "id", where), title=_text(path, entry, "title", where), base_year=int(base),
        published=_date(path, entry, "published", where), citation=_text(path, entry, "citation", where),
        confirmed=_boolean(path, entry, "confirmed", where), note=_optional_text(path, entry, "note", where) or "",
        constants=MappingProxyType(constants), origin=str(path), line=entry.lines["id"],
    )
