"""The rule catalogue: the shipped YAML, and one bad file per failure mode."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from loaders.errors import LoadError
from regulations import CONSTANT_NAMES, load_catalogue
from regulations.catalogue import DEFAULT_PATH

FIXTURES = Path(__file__).parent / "fixtures" / "regulations"
MINIMAL = (FIXTURES / "minimal.yaml").read_text()

#: docs/DOMAIN.md's table of yearly constants.
DOMAIN_TABLE = {
    2020: ("1864.03", "1827.30", "0.761", "0.56", "0.80", None, ("1.005", "1.030", "1.020")),
    2021: ("1901.12", "1863.84", "0.761", "0.56", "0.80", None, ("1.000", "1.020", "1.010")),
    2022: ("2031.64", "1992.04", "0.761", "0.40", "0.80", "1.6700", ("1.000", "1.010", "1.000")),
    2023: ("2010.69", "1972.02", "0.761", "0.35", "0.80", "1.6700", (None, None, None)),
    2024: ("2038.13", "1998.56", "0.749", "0.27", "0.80", "1.6700", (None, None, None)),
}
RULES = {2020: "CMS-1711-FC", 2021: "CMS-1730-F", 2022: "CMS-1747-F", 2023: "CMS-1766-F", 2024: "CMS-1780-F"}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _d(text):
    return None if text is None else Decimal(text)


def test_default_catalogue_is_the_package_yaml(catalogue):
    assert catalogue.path == str(DEFAULT_PATH)
    for document_id in (
        *RULES.values(),
        "CMS-1747-CN",
        "CMS-1780-CN",
        "HCPCS-QUARTERLY-UPDATE",
        "CMS-6069-N",
        "RCD-HOME-HEALTH",
        "CAA-2023-SEC-4134",
        "MCPM-CH10",
    ):
        assert catalogue.get(document_id).document_id == document_id
    with pytest.raises(KeyError):
        catalogue.get("CMS-9999-F")


def test_rules_carry_knowledge_and_effective_time(catalogue):
    rule = catalogue.get("CMS-1766-F")
    assert rule.citation == "87 FR 66790"
    assert rule.published == date(2022, 11, 4) and rule.effective == date(2023, 1, 1)
    assert catalogue.get("CMS-1780-F").published == date(2023, 11, 13)
    correction = catalogue.get("CMS-1780-CN")
    assert correction.corrects == "CMS-1780-F" and correction.published > rule.published
    for year, document_id in RULES.items():
        assert catalogue.get(document_id).effective == date(year, 1, 1)
    with pytest.raises(FrozenInstanceError):
        rule.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("year", sorted(DOMAIN_TABLE))
def test_rate_years_match_domain_table(catalogue, year):
    rate, reduced, labor, fdl, sharing, ot, rural = DOMAIN_TABLE[year]
    chosen = catalogue.rate_year(date(year, 6, 30))
    assert chosen.rule == RULES[year] and chosen.effective_from == date(year, 1, 1)
    assert chosen.rate_30_day.value == Decimal(rate)
    assert chosen.rate_30_day_no_quality.value == Decimal(reduced)
    assert chosen.labor_share.value == Decimal(labor)
    assert chosen.fdl_ratio.value == Decimal(fdl)
    assert chosen.loss_sharing_ratio.value == Decimal(sharing)
    assert (chosen.lupa_addon_sn.value, chosen.lupa_addon_pt.value, chosen.lupa_addon_slp.value) == (
        Decimal("1.8451"),
        Decimal("1.6700"),
        Decimal("1.6266"),
    )
    assert chosen.lupa_addon_ot.value == _d(ot)
    assert (chosen.rural_addon_a.value, chosen.rural_addon_b.value, chosen.rural_addon_c.value) == tuple(
        _d(v) for v in rural
    )
    for name in CONSTANT_NAMES:
        cited = getattr(chosen, name)
        assert cited.citation, name
        assert isinstance(cited.confirmed, bool)
        assert cited.value is None or isinstance(cited.value, Decimal)


def test_rate_year_is_chosen_by_effective_date(catalogue):
    assert catalogue.rate_year(date(2024, 3, 1)).rule == "CMS-1780-F"
    assert catalogue.rate_year(date(2024, 3, 1)).rate_30_day.value == Decimal("2038.13")
    assert catalogue.rate_year(date(2023, 12, 31)).rule == "CMS-1766-F"
    assert catalogue.rate_year(date(2023, 12, 31)).rate_30_day.value == Decimal("2010.69")
    assert catalogue.rate_year(date(2024, 1, 1)).rule == "CMS-1780-F"
    # The CY 2024 outlier threshold of DOMAIN.md: 2038.13 x 0.27 = 550.2951 -> 550.30.
    year = catalogue.rate_year(date(2024, 1, 1))
    assert (year.rate_30_day.value * year.fdl_ratio.value).quantize(Decimal("0.01")) == Decimal("550.30")
    with pytest.raises(LookupError):
        catalogue.rate_year(date(2019, 12, 31))


def test_minimal_fixture_loads(tmp_path):
    catalogue = load_catalogue(FIXTURES / "minimal.yaml")
    year = catalogue.rate_year(date(2030, 1, 1))
    assert year.rate_30_day.value == Decimal("2000.00") and year.rate_30_day.confirmed
    assert year.rural_addon_a.value is None


# --- one test per failure mode: the message names the file, the line and the key --------------


def _fails(tmp_path, text: str) -> LoadError:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as error:
        load_catalogue(path)
    assert error.value.path == str(path) and str(path) in str(error.value)
    return error.value


def test_unknown_key(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace("    citation: 1 FR 1\n", "    citation: 1 FR 1\n    citaton: x\n"))
    assert (error.line, error.field) == (6, "regulations[0].citaton")
    assert "unknown key 'citaton'" in str(error)


def test_unknown_constant(tmp_path):
    error = _fails(
        tmp_path,
        MINIMAL.replace("      fdl_ratio:", '      fdl_rate: {value: "0.27", citation: "x", confirmed: true}\n      fdl_ratio:'),
    )
    assert (error.line, error.field) == (13, "regulations[0].constants.fdl_rate")


def test_duplicate_key(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace("    effective: 2024-01-01\n", "    effective: 2024-01-01\n    effective: 2025-01-01\n"))
    assert (error.line, error.field) == (8, "effective")
    assert "duplicate key 'effective' (first on line 7)" in str(error)


def test_duplicate_key_inside_a_flow_mapping(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace('"0.27", citation', '"0.27", value: "0.30", citation'))
    assert (error.line, error.field) == (13, "value")


def test_bad_date(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace("published: 2023-11-01", "published: 2023-11-31"))
    assert (error.line, error.field) == (6, "regulations[0].published")
    assert "not a date" in str(error)
    error = _fails(tmp_path, MINIMAL.replace("effective: 2024-01-01", "effective: 1/1/2024"))
    assert (error.line, error.field) == (7, "regulations[0].effective")


def test_value_that_is_not_a_decimal(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace('"2000.00"', '"2,000.00"'))
    assert (error.line, error.field) == (10, "regulations[0].constants.rate_30_day.value")


def test_a_constant_left_out_is_unknown_not_an_error(tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text("\n".join(line for line in MINIMAL.splitlines() if "lupa_addon_ot" not in line and "labor_share" not in line))
    year = load_catalogue(path).rate_year(date(2030, 1, 1))
    assert year.missing == ("labor_share", "lupa_addon_ot")
    assert year.labor_share is None and year.lupa_addon_ot is None
    assert year.rural_addon_a.value is None and "rural_addon_a" not in year.missing  # none: does not apply


def test_bad_flag_and_unknown_kind(tmp_path):
    error = _fails(tmp_path, MINIMAL.replace("confirmed: false", "confirmed: yes"))
    assert (error.line, error.field) == (8, "regulations[0].confirmed")
    error = _fails(tmp_path, MINIMAL.replace("kind: hh_pps_rule", "kind: rule"))
    assert (error.line, error.field) == (3, "regulations[0].kind")


def test_correction_of_an_unknown_rule(tmp_path):
    extra = "  - id: CMS-0000-CN\n    kind: correction\n    title: t\n    corrects: CMS-1234-F\n    confirmed: false\n"
    error = _fails(tmp_path, MINIMAL + extra)
    assert (error.line, error.field) == (27, "regulations[1].corrects")


def test_malformed_yaml(tmp_path):
    error = _fails(tmp_path, "regulations:\n  - id: [unclosed\n")
    assert error.line is not None and "not valid YAML" in error.message
