"""The diff engine: two states of a source in, typed change records out (pure, no database).

Two sources are compared:

``hcpcs``
    An HCPCS Level II release as ``HcpcsState``: a mapping from code to ``HcpcsRecord``. Only the
    state fields (``loaders.hcpcs_record.STATE_FIELDS``) are compared; the fields that say what a
    release did to a code (action code, action effective date, sequence number, source line) are
    not content and never produce a change.
``hhpps``
    One year of Home Health PPS payment parameters as ``HhppsState``: case-mix weights and LUPA
    thresholds per HIPPS, per-visit and per-unit rates per (revenue code, variant), the wage index
    and name per CBSA, and the yearly constants (30-day rates, labor share, FDL ratio, ...).

``diff_hcpcs`` and ``diff_hhpps`` return ``Change`` records in a deterministic order (source, change
type in the order of ``HCPCS_CHANGE_TYPES`` / ``HHPPS_CHANGE_TYPES``, key, field); rendering is a
separate step (``reports.changes``). ``apply_changes(old, diff(old, new))`` gives back ``new``.

Rules, in the words a reviewer needs
------------------------------------

HCPCS, per code present on both sides, one change per state field that differs:

- ``termination_date`` set or moved: ``discontinued``; cleared: ``reactivated``.
- ``long_description`` / ``short_description``: compared with runs of whitespace folded (a line
  break of the fixed-width file is not a change); ``*_description_changed``.
- ``pricing_indicators`` and ``multiple_pricing_indicator``: ``pricing_indicator_changed``;
  ``coverage_code``: ``coverage_code_changed``; ``betos``: ``betos_changed``;
  ``type_of_service``: ``type_of_service_changed``; ``cross_references``:
  ``cross_reference_changed``; any other state field: ``administrative_data_changed``.

A code only in the new release is ``added``; a code only in the old release is ``discontinued``
(field ``None``: the record was dropped from the file).

Key changes (one ``key_changed`` record, never a removal plus an addition):

- HCPCS: code ``K1`` only in the old release and code ``K2`` only in the new one, with the same
  long description (whitespace folded, case ignored), and a cross-reference linking them (``K1``
  lists ``K2`` or ``K2`` lists ``K1``). The change carries both whole records.
  A code that stays in the file with a termination date is *not* a key change: CMS keeps it for
  about four years, so ``discontinued`` (of the old code) and ``added`` (of the new code) are both
  true; when the same description and cross-reference link them, each names the other in
  ``related_key``.
- CBSA: a CBSA only in the old wage index and one only in the new, with the same name (whitespace
  folded, case ignored), each being the only such candidate for the other, or a pair the caller
  declares (``renumbered_cbsas``, from a crosswalk): the CBSA was renumbered. The change carries
  the old and new wage index (with their difference); a different name is a ``cbsa_name_changed``
  under the new number.

Ambiguous candidates (two old keys for one new key or the reverse) are never paired.

HH PPS, per mapping: a value that differs is ``weight_changed``, ``lupa_threshold_changed``,
``visit_rate_changed``, ``unit_rate_changed``, ``wage_index_changed``, ``cbsa_name_changed`` or,
for constants, ``thirty_day_rate_changed`` (names starting ``thirty_day_rate``),
``labor_share_changed`` (``labor_share*``), ``fdl_ratio_changed`` (``fdl_ratio*``), otherwise
``constant_changed``. A HIPPS that appears or disappears is ``hipps_added`` / ``hipps_removed``
(one change per mapping it appears in: ``weight``, ``lupa_threshold``); a CBSA that appears or
disappears is ``cbsa_added`` / ``cbsa_removed``. A rate or constant that appears or disappears is
its ``*_changed`` type with ``old`` or ``new`` ``None``.

Numbers carry ``absolute_change = new - old`` and ``relative_change = (new - old) / old`` (``None``
when a side is missing or ``old`` is zero), as ``Decimal``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from loaders.hcpcs_record import STATE_FIELDS, HcpcsRecord
from loaders.hhpps import HrgRow, RevenueRateRow, WageIndexRow

HCPCS = "hcpcs"
HCPCS_CORRECTIONS = "hcpcs-corrections"  # what CMS's corrections changed in a published release
HHPPS = "hhpps"
SOURCES: tuple[str, ...] = (HCPCS, HCPCS_CORRECTIONS, HHPPS)

HCPCS_CHANGE_TYPES: tuple[str, ...] = (
    "added",
    "discontinued",
    "reactivated",
    "key_changed",
    "long_description_changed",
    "short_description_changed",
    "pricing_indicator_changed",
    "coverage_code_changed",
    "betos_changed",
    "type_of_service_changed",
    "cross_reference_changed",
    "administrative_data_changed",
)

HHPPS_CHANGE_TYPES: tuple[str, ...] = (
    "hipps_added",
    "hipps_removed",
    "weight_changed",
    "lupa_threshold_changed",
    "thirty_day_rate_changed",
    "labor_share_changed",
    "fdl_ratio_changed",
    "constant_changed",
    "visit_rate_changed",
    "unit_rate_changed",
    "cbsa_added",
    "cbsa_removed",
    "key_changed",
    "wage_index_changed",
    "cbsa_name_changed",
)

_TYPE_ORDER: dict[tuple[str, str], int] = {
    **{(HCPCS, name): index for index, name in enumerate(HCPCS_CHANGE_TYPES)},
    **{(HCPCS_CORRECTIONS, name): index for index, name in enumerate(HCPCS_CHANGE_TYPES)},
    **{(HHPPS, name): index for index, name in enumerate(HHPPS_CHANGE_TYPES)},
}

#: The HCPCS state field that each field-level change type watches; fields not listed here are
#: ``administrative_data_changed``. ``termination_date`` is handled apart (discontinued/reactivated).
HCPCS_FIELD_CHANGE_TYPES: dict[str, str] = {
    "long_description": "long_description_changed",
    "short_description": "short_description_changed",
    "pricing_indicators": "pricing_indicator_changed",
    "multiple_pricing_indicator": "pricing_indicator_changed",
    "coverage_code": "coverage_code_changed",
    "betos": "betos_changed",
    "type_of_service": "type_of_service_changed",
    "cross_references": "cross_reference_changed",
}

#: Rate variant -> suffix of the ``loaders.hhpps.RevenueRateRow`` attributes that hold it.
RATE_VARIANTS: dict[str, str] = {
    "standard": "",
    "rural": "_rural",
    "no_quality": "_no_quality",
    "no_quality_rural": "_no_quality_rural",
}

_FOLDED_FIELDS = frozenset({"long_description", "short_description"})


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one side of a comparison comes from: a release label, its effective date, a citation
    (CMS file name, Federal Register reference)."""

    label: str
    effective_date: date
    citation: str


HcpcsState = Mapping[str, HcpcsRecord]
"""One HCPCS release: code -> record."""


@dataclass(frozen=True)
class HhppsState:
    """One year of HH PPS payment parameters.

    ``visit_rates`` and ``unit_rates`` are keyed by ``(revenue_code, variant)``, the variant naming
    the rate column (e.g. ``"nonrural"``, ``"rural_unsubmitted"``). ``cbsa_names`` may omit a CBSA
    (no name known) but must not name a CBSA that has no wage index. ``constants`` are the yearly
    figures CMS publishes in the rule text, by name (``thirty_day_rate``, ``labor_share``,
    ``fdl_ratio``, ``loss_sharing_ratio``, ``lupa_add_on_factor_sn``, ...).
    """

    weights: Mapping[str, Decimal]
    lupa_thresholds: Mapping[str, int]
    visit_rates: Mapping[tuple[str, str], Decimal]
    unit_rates: Mapping[tuple[str, str], Decimal]
    wage_index: Mapping[str, Decimal]
    constants: Mapping[str, Decimal]
    cbsa_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.cbsa_names) - set(self.wage_index))
        if unknown:
            raise ValueError(f"CBSA names given for CBSAs without a wage index: {', '.join(unknown)}")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two states.

    ``key`` is the code, HIPPS, CBSA, revenue code or constant name on the new side (on the old
    side for a removal); ``old_key`` is set only for ``key_changed``. ``field`` names what changed
    (a state field, ``weight``, a rate variant ...), ``None`` when the whole entry was added,
    removed or re-keyed, in which case ``old``/``new`` hold the whole entry. ``related_key`` links a
    change to another key (the code an added code replaces, or the reverse). ``label`` is a human
    name for the key (short description, CBSA name) when one is known. ``new_reference`` and
    ``old_reference`` cite the exact place a side's value stands (a file and row, a rule's
    text) when the caller knows it; the provenances cite the whole side.
    """

    source: str
    change_type: str
    key: str
    field: str | None
    old: Any
    new: Any
    effective_date: date
    new_provenance: Provenance
    old_provenance: Provenance
    old_key: str | None = None
    related_key: str | None = None
    label: str | None = None
    absolute_change: Decimal | None = None
    relative_change: Decimal | None = None
    new_reference: str | None = None
    old_reference: str | None = None

    @property
    def citation(self) -> str:
        """The citation of the side that says what is now true."""
        return self.new_reference or self.new_provenance.citation

    @property
    def old_citation(self) -> str:
        return self.old_reference or self.old_provenance.citation

    def sort_key(self) -> tuple:
        return (
            SOURCES.index(self.source),
            _TYPE_ORDER[(self.source, self.change_type)],
            self.key,
            self.field or "",
            self.old_key or "",
        )


def fold_whitespace(text: str) -> str:
    """Runs of whitespace to one space, ends stripped."""
    return " ".join(text.split())


def _same_description(left: str, right: str) -> bool:
    return fold_whitespace(left).casefold() == fold_whitespace(right).casefold()


def _numeric_change(old: Any, new: Any) -> tuple[Decimal | None, Decimal | None]:
    if old is None or new is None:
        return None, None
    old_number, new_number = Decimal(old), Decimal(new)
    absolute = new_number - old_number
    if old_number == 0:
        return absolute, None
    with localcontext() as context:
        context.prec = 28
        relative = absolute / old_number
    return absolute, relative


# --- HCPCS -----------------------------------------------------------------------------------


def diff_hcpcs(
    old: HcpcsState,
    new: HcpcsState,
    *,
    old_provenance: Provenance,
    new_provenance: Provenance,
) -> list[Change]:
    """The changes that turn release ``old`` into release ``new`` (see the module rules)."""

    def change(change_type: str, key: str, field_name: str | None, old_value: Any, new_value: Any,
               *, label: str | None, old_key: str | None = None, related_key: str | None = None) -> Change:
        return Change(
            source=HCPCS,
            change_type=change_type,
            key=key,
            field=field_name,
            old=old_value,
            new=new_value,
            effective_date=new_provenance.effective_date,
            new_provenance=new_provenance,
            old_provenance=old_provenance,
            old_key=old_key,
            related_key=related_key,
            label=label,
        )

    only_old = sorted(set(old) - set(new))
    only_new = sorted(set(new) - set(old))
    renamed = _pair_unique(
        only_old,
        only_new,
        lambda old_code, new_code: _replaces(old[old_code], new[new_code]),
    )
    renamed_old = set(renamed)
    renamed_new = set(renamed.values())

    # Codes newly terminated in the new release, for linking an added code to what it replaces.
    newly_terminated = [
        code for code in sorted(set(old) & set(new))
        if new[code].termination_date is not None and old[code].termination_date != new[code].termination_date
    ]
    replacements = _pair_unique(
        newly_terminated,
        [code for code in only_new if code not in renamed_new],
        lambda old_code, new_code: _replaces(new[old_code], new[new_code]),
    )
    replaced_by = {new_code: old_code for old_code, new_code in replacements.items()}

    changes: list[Change] = []
    for old_code, new_code in renamed.items():
        changes.append(change("key_changed", new_code, None, old[old_code], new[new_code],
                              label=new[new_code].short_description, old_key=old_code))
    for code in only_new:
        if code not in renamed_new:
            changes.append(change("added", code, None, None, new[code],
                                  label=new[code].short_description, related_key=replaced_by.get(code)))
    for code in only_old:
        if code not in renamed_old:
            changes.append(change("discontinued", code, None, old[code], None, label=old[code].short_description))
    for code in sorted(set(old) & set(new)):
        before, after = old[code], new[code]
        if before.state() == after.state():
            continue
        for field_name in STATE_FIELDS:
            old_value, new_value = getattr(before, field_name), getattr(after, field_name)
            if field_name in _FOLDED_FIELDS:
                if fold_whitespace(old_value) == fold_whitespace(new_value):
                    continue
            elif old_value == new_value:
                continue
            if field_name == "termination_date":
                change_type = "reactivated" if new_value is None else "discontinued"
            else:
                change_type = HCPCS_FIELD_CHANGE_TYPES.get(field_name, "administrative_data_changed")
            changes.append(change(change_type, code, field_name, old_value, new_value,
                                  label=after.short_description, related_key=replacements.get(code)
                                  if field_name == "termination_date" else None))
    changes.sort(key=Change.sort_key)
    return changes


def _replaces(old_record: HcpcsRecord, new_record: HcpcsRecord) -> bool:
    """``new_record`` takes over ``old_record``: same long description and a cross-reference."""
    linked = new_record.code in old_record.cross_references or old_record.code in new_record.cross_references
    return linked and _same_description(old_record.long_description, new_record.long_description)


def _pair_unique(
    old_keys: Iterable[str], new_keys: Iterable[str], matches: Callable[[str, str], bool]
) -> dict[str, str]:
    """Old key -> new key for the pairs that match each other and nothing else."""
    new_keys = list(new_keys)
    candidates = {old_key: [new_key for new_key in new_keys if matches(old_key, new_key)] for old_key in old_keys}
    claimed: dict[str, int] = {}
    for found in candidates.values():
        for new_key in found:
            claimed[new_key] = claimed.get(new_key, 0) + 1
    return {
        old_key: found[0]
        for old_key, found in candidates.items()
        if len(found) == 1 and claimed[found[0]] == 1
    }


# --- HH PPS ----------------------------------------------------------------------------------


def _constant_change_type(name: str) -> str:
    if name.startswith("thirty_day_rate"):
        return "thirty_day_rate_changed"
    if name.startswith("labor_share"):
        return "labor_share_changed"
    if name.startswith("fdl_ratio"):
        return "fdl_ratio_changed"
    return "constant_changed"


def diff_hhpps(
    old: HhppsState,
    new: HhppsState,
    *,
    old_provenance: Provenance,
    new_provenance: Provenance,
    renumbered_cbsas: Mapping[str, str] | None = None,
) -> list[Change]:
    """The changes that turn one year's HH PPS parameters into the next's (see the module rules).

    ``renumbered_cbsas`` (old CBSA -> new CBSA, e.g. from the crosswalk a rule publishes with new
    OMB delineations) declares renumberings whose names changed too; a pair is used when the old
    CBSA is only on the old side and the new CBSA only on the new side. Other pairs are found by
    name.
    """

    def change(change_type: str, key: str, field_name: str | None, old_value: Any, new_value: Any,
               *, label: str | None = None, old_key: str | None = None, numeric: bool = True) -> Change:
        absolute, relative = _numeric_change(old_value, new_value) if numeric else (None, None)
        return Change(
            source=HHPPS,
            change_type=change_type,
            key=key,
            field=field_name,
            old=old_value,
            new=new_value,
            effective_date=new_provenance.effective_date,
            new_provenance=new_provenance,
            old_provenance=old_provenance,
            old_key=old_key,
            label=label,
            absolute_change=absolute,
            relative_change=relative,
        )

    changes: list[Change] = []

    for field_name, old_map, new_map, changed_type in (
        ("weight", old.weights, new.weights, "weight_changed"),
        ("lupa_threshold", old.lupa_thresholds, new.lupa_thresholds, "lupa_threshold_changed"),
    ):
        for hipps in sorted(set(old_map) | set(new_map)):
            if hipps not in old_map:
                changes.append(change("hipps_added", hipps, field_name, None, new_map[hipps]))
            elif hipps not in new_map:
                changes.append(change("hipps_removed", hipps, field_name, old_map[hipps], None))
            elif old_map[hipps] != new_map[hipps]:
                changes.append(change(changed_type, hipps, field_name, old_map[hipps], new_map[hipps]))

    for old_map, new_map, changed_type in (
        (old.visit_rates, new.visit_rates, "visit_rate_changed"),
        (old.unit_rates, new.unit_rates, "unit_rate_changed"),
    ):
        for revenue_code, variant in sorted(set(old_map) | set(new_map)):
            rate_key = (revenue_code, variant)
            old_value, new_value = old_map.get(rate_key), new_map.get(rate_key)
            if old_value != new_value:
                changes.append(change(changed_type, revenue_code, variant, old_value, new_value))

    for name in sorted(set(old.constants) | set(new.constants)):
        old_value, new_value = old.constants.get(name), new.constants.get(name)
        if old_value != new_value:
            changes.append(change(_constant_change_type(name), name, "value", old_value, new_value))

    only_old = sorted(set(old.wage_index) - set(new.wage_index))
    only_new = sorted(set(new.wage_index) - set(old.wage_index))
    declared = {
        old_cbsa: new_cbsa
        for old_cbsa, new_cbsa in sorted((renumbered_cbsas or {}).items())
        if old_cbsa in only_old and new_cbsa in only_new
    }
    if len(set(declared.values())) != len(declared):
        raise ValueError("renumbered_cbsas maps two old CBSAs to one new CBSA")
    renumbered = declared | _pair_unique(
        [cbsa for cbsa in only_old if cbsa not in declared],
        [cbsa for cbsa in only_new if cbsa not in declared.values()],
        lambda old_cbsa, new_cbsa: old_cbsa in old.cbsa_names and new_cbsa in new.cbsa_names
        and _same_description(old.cbsa_names[old_cbsa], new.cbsa_names[new_cbsa]),
    )
    renumbered_new = {new_cbsa: old_cbsa for old_cbsa, new_cbsa in renumbered.items()}
    for cbsa in only_new:
        name = new.cbsa_names.get(cbsa)
        if cbsa in renumbered_new:
            old_cbsa = renumbered_new[cbsa]
            changes.append(change("key_changed", cbsa, "wage_index", old.wage_index[old_cbsa], new.wage_index[cbsa],
                                  label=name, old_key=old_cbsa))
            if old.cbsa_names.get(old_cbsa) != name:
                changes.append(change("cbsa_name_changed", cbsa, "name", old.cbsa_names.get(old_cbsa), name,
                                      label=name, numeric=False))
        else:
            changes.append(change("cbsa_added", cbsa, "wage_index", None, new.wage_index[cbsa], label=name))
    for cbsa in only_old:
        if cbsa not in renumbered:
            changes.append(change("cbsa_removed", cbsa, "wage_index", old.wage_index[cbsa], None,
                                  label=old.cbsa_names.get(cbsa)))
    for cbsa in sorted(set(old.wage_index) & set(new.wage_index)):
        name = new.cbsa_names.get(cbsa)
        if old.wage_index[cbsa] != new.wage_index[cbsa]:
            changes.append(change("wage_index_changed", cbsa, "wage_index", old.wage_index[cbsa],
                                  new.wage_index[cbsa], label=name))
        if old.cbsa_names.get(cbsa) != name:
            changes.append(change("cbsa_name_changed", cbsa, "name", old.cbsa_names.get(cbsa), name,
                                  label=name, numeric=False))

    changes.sort(key=Change.sort_key)
    return changes


def hhpps_state_from_tables(
    hrg_rows: Iterable[HrgRow],
    revenue_rows: Iterable[RevenueRateRow],
    wage_index_rows: Iterable[WageIndexRow],
    constants: Mapping[str, Decimal],
) -> HhppsState:
    """An ``HhppsState`` from the rows ``loaders.hhpps`` reads (one year's tables).

    Rate variants are named after the row attributes: ``standard``, ``rural``, ``no_quality``,
    ``no_quality_rural``. A CBSA listed twice must be resolved first
    (``loaders.hhpps.resolve_wage_index``); a repeated key here raises ``ValueError``.
    """
    weights: dict[str, Decimal] = {}
    lupa_thresholds: dict[str, int] = {}
    for row in hrg_rows:
        if row.hipps in weights:
            raise ValueError(f"HIPPS {row.hipps} is listed twice (row {row.row})")
        weights[row.hipps] = row.weight
        lupa_thresholds[row.hipps] = row.lupa_threshold
    visit_rates: dict[tuple[str, str], Decimal] = {}
    unit_rates: dict[tuple[str, str], Decimal] = {}
    for row in revenue_rows:
        if (row.revenue_code, "standard") in visit_rates:
            raise ValueError(f"revenue code {row.revenue_code} is listed twice (row {row.row})")
        for variant, suffix in RATE_VARIANTS.items():
            visit_rates[(row.revenue_code, variant)] = getattr(row, "visit_rate" + suffix)
            unit_rates[(row.revenue_code, variant)] = getattr(row, "unit_rate" + suffix)
    wage_index: dict[str, Decimal] = {}
    cbsa_names: dict[str, str] = {}
    for row in wage_index_rows:
        if row.cbsa in wage_index:
            raise ValueError(f"CBSA {row.cbsa} is listed twice (row {row.row}): resolve it first")
        wage_index[row.cbsa] = row.wage_index
        cbsa_names[row.cbsa] = row.name
    return HhppsState(
        weights=weights,
        lupa_thresholds=lupa_thresholds,
        visit_rates=visit_rates,
        unit_rates=unit_rates,
        wage_index=wage_index,
        constants=dict(constants),
        cbsa_names=cbsa_names,
    )


# --- applying changes ------------------------------------------------------------------------


class ChangeConflict(ValueError):
    """A change does not fit the state it is applied to (its ``old`` side is not what is there)."""


def _expect(actual: Any, change: Change, expected: Any | None = None) -> None:
    wanted = change.old if expected is None else expected
    if actual != wanted:
        raise ChangeConflict(
            f"{change.source} {change.change_type} {change.key} {change.field or ''}: "
            f"expected {wanted!r}, found {actual!r}"
        )


def apply_changes(state: HcpcsState | HhppsState, changes: Iterable[Change]) -> dict[str, HcpcsRecord] | HhppsState:
    """The state that ``changes`` make of ``state`` (a new object; ``state`` is not touched).

    Each change is checked against what it replaces; a mismatch raises ``ChangeConflict``.
    ``apply_changes(old, diff(old, new))`` equals ``new``, for HCPCS in its state fields (the
    descriptions with whitespace folded): a diff says nothing of action codes or source lines.
    """
    if isinstance(state, HhppsState):
        return _apply_hhpps(state, [change for change in changes if change.source == HHPPS])
    return _apply_hcpcs(state, [change for change in changes if change.source == HCPCS])


def _apply_hcpcs(state: HcpcsState, changes: list[Change]) -> dict[str, HcpcsRecord]:
    result = dict(state)
    for change in changes:
        if change.change_type == "key_changed":
            _expect(result.get(change.old_key), change)
            if change.key in result:
                raise ChangeConflict(f"hcpcs key_changed {change.old_key} -> {change.key}: {change.key} exists")
            del result[change.old_key]
            result[change.key] = change.new
        elif change.field is None and change.change_type == "added":
            if change.key in result:
                raise ChangeConflict(f"hcpcs added {change.key}: the code is already there")
            result[change.key] = change.new
        elif change.field is None:
            _expect(result.get(change.key), change)
            del result[change.key]
        else:
            record = result.get(change.key)
            if record is None:
                raise ChangeConflict(f"hcpcs {change.change_type} {change.key}: no such code")
            current = getattr(record, change.field)
            if change.field in _FOLDED_FIELDS:
                _expect(fold_whitespace(current), change, expected=fold_whitespace(change.old))
            else:
                _expect(current, change)
            result[change.key] = dataclasses.replace(record, **{change.field: change.new})
    return result


def _apply_hhpps(state: HhppsState, changes: list[Change]) -> HhppsState:
    weights = dict(state.weights)
    lupa_thresholds = dict(state.lupa_thresholds)
    visit_rates = dict(state.visit_rates)
    unit_rates = dict(state.unit_rates)
    wage_index = dict(state.wage_index)
    constants = dict(state.constants)
    cbsa_names = dict(state.cbsa_names)

    def put(mapping: dict, key: Any, change: Change) -> None:
        _expect(mapping.get(key), change)
        if change.new is None:
            del mapping[key]
        else:
            mapping[key] = change.new

    hipps_maps = {"weight": weights, "lupa_threshold": lupa_thresholds}
    # Re-keying first, so that a name change reported under the new key finds its CBSA.
    for change in sorted(changes, key=lambda change: change.change_type != "key_changed"):
        kind = change.change_type
        if kind in ("hipps_added", "hipps_removed", "weight_changed", "lupa_threshold_changed"):
            put(hipps_maps[change.field], change.key, change)
        elif kind == "visit_rate_changed":
            put(visit_rates, (change.key, change.field), change)
        elif kind == "unit_rate_changed":
            put(unit_rates, (change.key, change.field), change)
        elif kind in ("thirty_day_rate_changed", "labor_share_changed", "fdl_ratio_changed", "constant_changed"):
            put(constants, change.key, change)
        elif kind == "key_changed":
            _expect(wage_index.get(change.old_key), change)
            if change.key in wage_index:
                raise ChangeConflict(f"hhpps key_changed {change.old_key} -> {change.key}: CBSA {change.key} exists")
            del wage_index[change.old_key]
            wage_index[change.key] = change.new
            if change.old_key in cbsa_names:
                cbsa_names[change.key] = cbsa_names.pop(change.old_key)
        elif kind in ("cbsa_added", "cbsa_removed", "wage_index_changed"):
            put(wage_index, change.key, change)
            if kind == "cbsa_added" and change.label is not None:
                cbsa_names[change.key] = change.label
            if kind == "cbsa_removed":
                cbsa_names.pop(change.key, None)
        elif kind == "cbsa_name_changed":
            put(cbsa_names, change.key, change)
        else:
            raise ChangeConflict(f"hhpps {kind}: not a change type this engine applies")

    return HhppsState(
        weights=weights,
        lupa_thresholds=lupa_thresholds,
        visit_rates=visit_rates,
        unit_rates=unit_rates,
        wage_index=wage_index,
        constants=constants,
        cbsa_names=cbsa_names,
    )
