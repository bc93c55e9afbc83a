"""The diff engine: typed changes between two HCPCS releases or two years of HH PPS parameters."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.diff import (
    HCPCS_CHANGE_TYPES,
    HHPPS_CHANGE_TYPES,
    Change,
    ChangeConflict,
    HhppsState,
    Provenance,
    apply_changes,
    diff_hcpcs,
    diff_hhpps,
    fold_whitespace,
    hhpps_state_from_tables,
)
from loaders.hcpcs_record import STATE_FIELDS, HcpcsRecord
from loaders.hhpps import read_hhpps_table, resolve_wage_index

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HHPPS_DIR = SHARED / "cms" / "hhpps"

OLD = Provenance("2018 annual", date(2018, 1, 1), "HCPC2018_CONTR_ANWEB_disc.txt")
NEW = Provenance("2019 annual", date(2019, 1, 1), "HCPC2019_CONTR_ANWEB.txt")


def record(code: str, **changes) -> HcpcsRecord:
    """A plain procedure record; keyword arguments replace fields."""
    base = HcpcsRecord(
        code=code,
        kind="procedure",
        sequence_number=100,
        long_description="Home health aide services, each 15 minutes",
        short_description="Hha aide 15 min",
        pricing_indicators=("13",),
        multiple_pricing_indicator="",
        coverage_issues_refs=(),
        carriers_manual_refs=(),
        statute="",
        lab_certifications=(),
        cross_references=(),
        coverage_code="C",
        asc_group="",
        asc_effective_date=None,
        opps_group="",
        opps_payment_indicator="",
        opps_effective_date=None,
        processing_note="",
        betos="O1E",
        type_of_service=("1",),
        anesthesia_base_units="",
        added_date=date(2016, 1, 1),
        action_effective_date=date(2016, 1, 1),
        termination_date=None,
        action_code="N",
        source_line=12,
    )
    return dataclasses.replace(base, **changes)


def hcpcs(*records: HcpcsRecord) -> dict[str, HcpcsRecord]:
    return {r.code: r for r in records}


def diff(old, new) -> list[Change]:
    if isinstance(old, HhppsState):
        return diff_hhpps(old, new, old_provenance=OLD, new_provenance=NEW)
    return diff_hcpcs(old, new, old_provenance=OLD, new_provenance=NEW)


def summary(changes: list[Change]) -> list[tuple]:
    return [(c.change_type, c.key, c.field) for c in changes]


def hcpcs_states(state) -> dict[str, tuple]:
    """What a diff speaks of: the state fields, descriptions with whitespace folded."""
    folded = {STATE_FIELDS.index("long_description"), STATE_FIELDS.index("short_description")}
    return {
        code: tuple(fold_whitespace(v) if i in folded else v for i, v in enumerate(r.state()))
        for code, r in state.items()
    }


# --- HCPCS: one inline case per change type --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "change_type", "field"),
    [
        ({"long_description": "Home health aide services, each 30 minutes"}, "long_description_changed", "long_description"),
        ({"short_description": "Hha aide 30 min"}, "short_description_changed", "short_description"),
        ({"pricing_indicators": ("13", "57")}, "pricing_indicator_changed", "pricing_indicators"),
        ({"multiple_pricing_indicator": "A"}, "pricing_indicator_changed", "multiple_pricing_indicator"),
        ({"coverage_code": "I"}, "coverage_code_changed", "coverage_code"),
        ({"betos": "O1C"}, "betos_changed", "betos"),
        ({"type_of_service": ("1", "F")}, "type_of_service_changed", "type_of_service"),
        ({"cross_references": ("G0156",)}, "cross_reference_changed", "cross_references"),
        ({"statute": "1861"}, "administrative_data_changed", "statute"),
        ({"asc_group": "01", "asc_effective_date": date(2019, 1, 1)}, "administrative_data_changed", "asc_group"),
        ({"termination_date": date(2018, 12, 31)}, "discontinued", "termination_date"),
    ],
)
def test_each_state_field_change_has_its_type(changes, change_type, field):
    old = hcpcs(record("G0156"))
    new = hcpcs(record("G0156", **changes))
    found = diff(old, new)
    assert (change_type, "G0156", field) in summary(found)
    assert {c.change_type for c in found} == {change_type}
    hit = next(c for c in found if c.field == field)
    assert hit.old == getattr(old["G0156"], field) and hit.new == changes[field]
    assert hit.effective_date == NEW.effective_date
    assert hit.citation == "HCPC2019_CONTR_ANWEB.txt" and hit.old_provenance == OLD
    assert hit.label == new["G0156"].short_description


def test_added_dropped_and_reactivated():
    old = hcpcs(record("G0151"), record("G0154", termination_date=date(2016, 2, 29)), record("G0299", termination_date=date(2018, 12, 31)))
    new = hcpcs(record("G0151"), record("G0299"), record("G0493", long_description="Skilled services of a registered nurse"))
    assert summary(diff(old, new)) == [
        ("added", "G0493", None),
        ("discontinued", "G0154", None),
        ("reactivated", "G0299", "termination_date"),
    ]


def test_termination_date_moved_is_a_discontinuation():
    old = hcpcs(record("G0154", termination_date=date(2016, 12, 31)))
    new = hcpcs(record("G0154", termination_date=date(2016, 2, 29)))
    [change] = diff(old, new)
    assert (change.change_type, change.old, change.new) == ("discontinued", date(2016, 12, 31), date(2016, 2, 29))


def test_action_code_and_source_line_alone_are_no_change():
    old = hcpcs(record("G0151", action_code="A", source_line=40, sequence_number=100))
    new = hcpcs(record("G0151", action_code="N", source_line=4012, sequence_number=200))
    assert diff(old, new) == []


def test_descriptions_are_compared_with_whitespace_folded():
    old = hcpcs(record("G0151", long_description="Services performed by a qualified  physical therapist"))
    new = hcpcs(record("G0151", long_description="Services performed by a qualified physical therapist "))
    assert diff(old, new) == []


def test_code_renamed_by_cross_reference_is_one_key_change():
    old = hcpcs(record("C9483", long_description="Injection, atezolizumab, 10 mg", cross_references=("J9022",)))
    new = hcpcs(record("J9022", long_description="Injection, Atezolizumab,  10 mg", added_date=date(2018, 1, 1)))
    [change] = diff(old, new)
    assert (change.change_type, change.old_key, change.key, change.field) == ("key_changed", "C9483", "J9022", None)
    assert change.old == old["C9483"] and change.new == new["J9022"]


def test_same_description_without_a_cross_reference_is_a_removal_and_an_addition():
    old = hcpcs(record("C9483", long_description="Injection, atezolizumab, 10 mg"))
    new = hcpcs(record("J9022", long_description="Injection, atezolizumab, 10 mg"))
    assert summary(diff(old, new)) == [("added", "J9022", None), ("discontinued", "C9483", None)]


def test_ambiguous_renames_are_not_paired():
    text = "Injection, atezolizumab, 10 mg"
    old = hcpcs(record("C9483", long_description=text, cross_references=("J9022", "J9023")))
    new = hcpcs(record("J9022", long_description=text), record("J9023", long_description=text))
    assert [c.change_type for c in diff(old, new)] == ["added", "added", "discontinued"]


def test_terminated_code_and_its_replacement_name_each_other():
    text = "Injection, atezolizumab, 10 mg"
    old = hcpcs(record("C9483", long_description=text))
    new = hcpcs(
        record("C9483", long_description=text, termination_date=date(2017, 12, 31)),
        record("J9022", long_description=text, cross_references=("C9483",)),
    )
    changes = diff(old, new)
    assert [(c.change_type, c.key, c.related_key) for c in changes] == [
        ("added", "J9022", "C9483"),
        ("discontinued", "C9483", "J9022"),
    ]
    assert hcpcs_states(apply_changes(old, changes)) == hcpcs_states(new)


def test_order_is_source_then_type_then_key():
    old = hcpcs(record("G0300"), record("G0151"), record("A0001"))
    new = hcpcs(
        record("G0300", short_description="Hhs/hospice of lpn"),
        record("G0151", short_description="Hhcp-serv of pt", betos="O1D"),
        record("B0001"),
    )
    changes = diff(old, new)
    assert summary(changes) == [
        ("added", "B0001", None),
        ("discontinued", "A0001", None),
        ("short_description_changed", "G0151", "short_description"),
        ("short_description_changed", "G0300", "short_description"),
        ("betos_changed", "G0151", "betos"),
    ]
    assert changes == diff(dict(reversed(list(old.items()))), dict(reversed(list(new.items()))))


def test_applying_a_change_to_the_wrong_state_is_refused():
    old = hcpcs(record("G0151"))
    changes = diff(old, hcpcs(record("G0151", betos="O1D")))
    with pytest.raises(ChangeConflict, match="G0151"):
        apply_changes(hcpcs(record("G0151", betos="Z2")), changes)


# --- HH PPS ------------------------------------------------------------------------------------


def hhpps(**overrides) -> HhppsState:
    base = dict(
        weights={"1FC11": Decimal("1.1009"), "1AA11": Decimal("0.9")},
        lupa_thresholds={"1FC11": 4, "1AA11": 4},
        visit_rates={("0550", "standard"): Decimal("161.79")},
        unit_rates={("0550", "standard"): Decimal("54.17")},
        wage_index={"10180": Decimal("0.8052"), "99901": Decimal("0.6603")},
        constants={"thirty_day_rate": Decimal("2010.69"), "labor_share": Decimal("0.761"), "fdl_ratio": Decimal("0.35"),
                   "loss_sharing_ratio": Decimal("0.80")},
        cbsa_names={"10180": "Abilene, TX", "99901": "ALABAMA"},
    )
    base.update(overrides)
    return HhppsState(**base)


def test_hhpps_value_changes_carry_their_difference():
    old = hhpps()
    new = hhpps(
        weights={"1FC11": Decimal("1.0929"), "1AA11": Decimal("0.9")},
        lupa_thresholds={"1FC11": 5, "1AA11": 4},
        visit_rates={("0550", "standard"): Decimal("168.37")},
        constants={"thirty_day_rate": Decimal("2038.13"), "labor_share": Decimal("0.749"), "fdl_ratio": Decimal("0.27"),
                   "loss_sharing_ratio": Decimal("0.80"), "lupa_add_on_factor_ot": Decimal("1.6700")},
        wage_index={"10180": Decimal("0.8052"), "99901": Decimal("0.6700")},
    )
    changes = diff(old, new)
    assert summary(changes) == [
        ("weight_changed", "1FC11", "weight"),
        ("lupa_threshold_changed", "1FC11", "lupa_threshold"),
        ("thirty_day_rate_changed", "thirty_day_rate", "value"),
        ("labor_share_changed", "labor_share", "value"),
        ("fdl_ratio_changed", "fdl_ratio", "value"),
        ("constant_changed", "lupa_add_on_factor_ot", "value"),
        ("visit_rate_changed", "0550", "standard"),
        ("wage_index_changed", "99901", "wage_index"),
    ]
    weight = changes[0]
    assert (weight.old, weight.new, weight.absolute_change) == (Decimal("1.1009"), Decimal("1.0929"), Decimal("-0.0080"))
    assert weight.relative_change.quantize(Decimal("0.000001")) == Decimal("-0.007267")
    assert changes[5].old is None and changes[5].absolute_change is None
    assert changes[7].label == "ALABAMA"


def test_hipps_and_cbsa_added_and_removed():
    old = hhpps()
    new = hhpps(
        weights={"1FC11": Decimal("1.1009"), "2FC11": Decimal("1.3")},
        lupa_thresholds={"1FC11": 4, "2FC11": 3},
        wage_index={"10180": Decimal("0.8052"), "99902": Decimal("1.1875")},
        cbsa_names={"10180": "Abilene, TX", "99902": "ALASKA"},
    )
    assert summary(diff(old, new)) == [
        ("hipps_added", "2FC11", "lupa_threshold"),
        ("hipps_added", "2FC11", "weight"),
        ("hipps_removed", "1AA11", "lupa_threshold"),
        ("hipps_removed", "1AA11", "weight"),
        ("cbsa_added", "99902", "wage_index"),
        ("cbsa_removed", "99901", "wage_index"),
    ]


def test_cbsa_renumbered_with_the_same_name_is_one_key_change():
    old = hhpps()
    new = hhpps(
        wage_index={"10180": Decimal("0.8052"), "99951": Decimal("0.6700")},
        cbsa_names={"10180": "Abilene, TX", "99951": "Alabama"},
    )
    changes = diff(old, new)
    assert summary(changes) == [("key_changed", "99951", "wage_index"), ("cbsa_name_changed", "99951", "name")]
    assert changes[0].old_key == "99901"
    assert (changes[0].old, changes[0].new, changes[0].absolute_change) == (Decimal("0.6603"), Decimal("0.6700"), Decimal("0.0097"))
    assert apply_changes(old, changes) == new


def test_cbsa_renumbered_by_a_declared_crosswalk_despite_a_new_name():
    old = hhpps()
    new = hhpps(
        wage_index={"10180": Decimal("0.8052"), "16984": Decimal("1.0325"), "99901": Decimal("0.6603")},
        cbsa_names={"10180": "Abilene, TX", "16984": "Chicago-Naperville-Evanston, IL", "99901": "ALABAMA"},
    )
    old = hhpps(
        wage_index={"10180": Decimal("0.8052"), "16974": Decimal("1.0420"), "99901": Decimal("0.6603")},
        cbsa_names={"10180": "Abilene, TX", "16974": "Chicago-Naperville-Arlington Hei", "99901": "ALABAMA"},
    )
    assert summary(diff(old, new)) == [("cbsa_added", "16984", "wage_index"), ("cbsa_removed", "16974", "wage_index")]
    changes = diff_hhpps(old, new, old_provenance=OLD, new_provenance=NEW, renumbered_cbsas={"16974": "16984"})
    assert [(c.change_type, c.old_key, c.key, c.old, c.new) for c in changes] == [
        ("key_changed", "16974", "16984", Decimal("1.0420"), Decimal("1.0325")),
        ("cbsa_name_changed", None, "16984", "Chicago-Naperville-Arlington Hei", "Chicago-Naperville-Evanston, IL"),
    ]
    assert apply_changes(old, changes) == new


def test_hhpps_state_refuses_names_of_unknown_cbsas():
    with pytest.raises(ValueError, match="12345"):
        hhpps(cbsa_names={"12345": "Nowhere"})


# --- real tables: CY2023 -> CY2024 -------------------------------------------------------------

# The yearly constants as CMS's pricer uses them (DOMAIN.md's table; the rules' citations).
CONSTANTS = {
    2020: {"thirty_day_rate": Decimal("1864.03"), "labor_share": Decimal("0.761"), "fdl_ratio": Decimal("0.56")},
    2021: {"thirty_day_rate": Decimal("1901.12"), "labor_share": Decimal("0.761"), "fdl_ratio": Decimal("0.56")},
    2023: {"thirty_day_rate": Decimal("2010.69"), "thirty_day_rate_no_quality": Decimal("1972.02"),
           "labor_share": Decimal("0.761"), "fdl_ratio": Decimal("0.35"), "loss_sharing_ratio": Decimal("0.80")},
    2024: {"thirty_day_rate": Decimal("2038.13"), "thirty_day_rate_no_quality": Decimal("1998.56"),
           "labor_share": Decimal("0.749"), "fdl_ratio": Decimal("0.27"), "loss_sharing_ratio": Decimal("0.80")},
}


def real_hhpps(year: int) -> HhppsState:
    wage = read_hhpps_table(HHPPS_DIR / f"cbsa-wage-index-{year}.csv")
    return hhpps_state_from_tables(
        read_hhpps_table(HHPPS_DIR / f"hrg-{year}.csv").rows,
        read_hhpps_table(HHPPS_DIR / f"rev-{year}.csv").rows,
        resolve_wage_index(wage, "first").values(),
        CONSTANTS[year],
    )


@pytest.fixture(scope="module")
def hhpps_2023_2024():
    return real_hhpps(2023), real_hhpps(2024)


def test_real_tables_2023_to_2024(hhpps_2023_2024):
    old, new = hhpps_2023_2024
    changes = diff_hhpps(
        old, new,
        old_provenance=Provenance("CY2023", date(2023, 1, 1), "CMS-1766-F, 87 FR 66790"),
        new_provenance=Provenance("CY2024", date(2024, 1, 1), "CMS-1780-F"),
    )
    by_key = {(c.change_type, c.key, c.field): c for c in changes}
    weight = by_key[("weight_changed", "1FC11", "weight")]
    assert (weight.old, weight.new, weight.citation) == (Decimal("1.1009"), Decimal("1.0929"), "CMS-1780-F")
    assert by_key[("labor_share_changed", "labor_share", "value")].new == Decimal("0.749")
    assert by_key[("fdl_ratio_changed", "fdl_ratio", "value")].absolute_change == Decimal("-0.08")
    assert ("constant_changed", "loss_sharing_ratio", "value") not in by_key
    assert by_key[("visit_rate_changed", "0550", "standard")].new == Decimal("168.37")
    assert len([c for c in changes if c.change_type == "weight_changed"]) == 431  # 1JC21 keeps its weight
    assert all(c.change_type in HHPPS_CHANGE_TYPES for c in changes)
    assert changes == sorted(changes, key=Change.sort_key)
    assert apply_changes(old, changes) == new
    assert diff_hhpps(new, new, old_provenance=OLD, new_provenance=NEW) == []


def test_real_cbsa_renumbering_of_cy2021():
    """CY2021 adopted OMB Bulletin 18-04: three CBSAs got new numbers and new names."""
    old, new = real_hhpps(2020), real_hhpps(2021)
    crosswalk = {"16974": "16984", "19380": "19430", "39140": "39150"}
    plain = diff_hhpps(old, new, old_provenance=OLD, new_provenance=NEW)
    assert {c.key for c in plain if c.change_type == "cbsa_removed"} == {"16974", "19380", "20524", "39140", "43524"}
    changes = diff_hhpps(old, new, old_provenance=OLD, new_provenance=NEW, renumbered_cbsas=crosswalk)
    renumbered = {c.old_key: (c.key, c.label) for c in changes if c.change_type == "key_changed"}
    assert renumbered == {"16974": ("16984", "Chicago-Naperville-Evanston, IL"), "19380": ("19430", "Dayton-Kettering, OH"),
                          "39140": ("39150", "Prescott Valley-Prescott, AZ")}
    removed = {c.key for c in changes if c.change_type == "cbsa_removed"}
    added = {c.key for c in changes if c.change_type == "cbsa_added"}
    assert removed == {"20524", "43524"} and not added & set(crosswalk.values())
    assert len(changes) == len(plain)  # each pair: a key change and a name change, for a removal and an addition
    assert apply_changes(old, changes) == new


# --- properties --------------------------------------------------------------------------------

CODES = ("G0151", "G0152", "G0153", "G0154", "G0299", "G0300", "Q5001", "Q5002")
WORDS = ("skilled", "nursing", "aide", "therapy", "home", "health")
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
dates = st.none() | st.sampled_from((date(2016, 2, 29), date(2017, 12, 31), date(2019, 1, 1)))


@st.composite
def hcpcs_release(draw) -> dict[str, HcpcsRecord]:
    codes = draw(st.lists(st.sampled_from(CODES), unique=True, max_size=6))
    return {
        code: record(
            code,
            long_description=draw(texts),
            short_description=draw(texts),
            pricing_indicators=draw(st.sampled_from(((), ("13",), ("13", "57")))),
            coverage_code=draw(st.sampled_from(("C", "I", "M"))),
            betos=draw(st.sampled_from(("O1E", "O1D"))),
            type_of_service=draw(st.sampled_from((("1",), ("1", "F")))),
            cross_references=tuple(draw(st.lists(st.sampled_from(CODES), unique=True, max_size=2))),
            statute=draw(st.sampled_from(("", "1861"))),
            added_date=draw(dates),
            termination_date=draw(dates),
            action_code=draw(st.sampled_from("ACDNP")),
            source_line=draw(st.integers(1, 9000)),
        )
        for code in codes
    }


@st.composite
def hcpcs_release_pair(draw) -> tuple[dict[str, HcpcsRecord], dict[str, HcpcsRecord]]:
    """Two unrelated releases, or a release and its successor where some codes were renamed."""
    old = draw(hcpcs_release())
    if draw(st.booleans()):
        return old, draw(hcpcs_release())
    new = dict(old)
    free = [code for code in CODES if code not in old]
    for code in draw(st.lists(st.sampled_from(sorted(old)), unique=True)) if old else ():
        if not free:
            break
        target = free.pop()
        moved = new.pop(code)
        if draw(st.booleans()):
            new[target] = dataclasses.replace(moved, code=target, cross_references=(code,))
        else:
            new[code] = dataclasses.replace(moved, termination_date=date(2019, 1, 1))
            new[target] = dataclasses.replace(moved, code=target, termination_date=None, cross_references=(code,))
    return old, new


decimals = st.sampled_from(("0.5", "1.0929", "1.1009", "0", "2038.13")).map(Decimal)


@st.composite
def hhpps_year(draw) -> HhppsState:
    hipps = st.sampled_from(("1FC11", "1AA11", "2FC21", "4LC31"))
    rate_keys = st.tuples(st.sampled_from(("0550", "0570")), st.sampled_from(("standard", "rural")))
    cbsas = draw(st.dictionaries(st.sampled_from(("10180", "99901", "99951", "49700")), decimals, max_size=4))
    names = {cbsa: draw(st.sampled_from(("Alabama", "ALABAMA", "Abilene, TX"))) for cbsa in cbsas if draw(st.booleans())}
    return HhppsState(
        weights=draw(st.dictionaries(hipps, decimals, max_size=4)),
        lupa_thresholds=draw(st.dictionaries(hipps, st.integers(2, 5), max_size=4)),
        visit_rates=draw(st.dictionaries(rate_keys, decimals, max_size=4)),
        unit_rates=draw(st.dictionaries(rate_keys, decimals, max_size=4)),
        wage_index=cbsas,
        constants=draw(st.dictionaries(st.sampled_from(("thirty_day_rate", "labor_share", "fdl_ratio", "rural_add_on_a")),
                                       decimals, max_size=4)),
        cbsa_names=names,
    )


@settings(max_examples=50, deadline=None)
@given(hcpcs_release())
def test_hcpcs_diff_of_a_release_with_itself_is_empty(release):
    assert diff(release, release) == []


@settings(max_examples=100, deadline=None)
@given(hcpcs_release_pair())
def test_hcpcs_apply_of_diff_gives_the_new_release(pair):
    old, new = pair
    changes = diff(old, new)
    assert hcpcs_states(apply_changes(old, changes)) == hcpcs_states(new)
    assert all(c.change_type in HCPCS_CHANGE_TYPES for c in changes)
    assert changes == sorted(changes, key=Change.sort_key)


@settings(max_examples=50, deadline=None)
@given(hhpps_year())
def test_hhpps_diff_of_a_year_with_itself_is_empty(year):
    assert diff(year, year) == []


@st.composite
def hhpps_year_pair(draw) -> tuple[HhppsState, HhppsState]:
    """Two unrelated years, or a year and its successor where some CBSAs were renumbered."""
    old = draw(hhpps_year())
    if draw(st.booleans()):
        return old, draw(hhpps_year())
    wage_index, names = dict(old.wage_index), dict(old.cbsa_names)
    free = [cbsa for cbsa in ("16984", "31084", "99951") if cbsa not in wage_index]
    for cbsa in draw(st.lists(st.sampled_from(sorted(old.cbsa_names)), unique=True)) if old.cbsa_names else ():
        if free:
            target = free.pop()
            wage_index[target] = draw(decimals)
            del wage_index[cbsa]
            names[target] = names.pop(cbsa).upper()
    return old, dataclasses.replace(old, wage_index=wage_index, cbsa_names=names)


@settings(max_examples=100, deadline=None)
@given(hhpps_year_pair())
def test_hhpps_apply_of_diff_gives_the_new_year(pair):
    old, new = pair
    assert apply_changes(old, diff(old, new)) == new
