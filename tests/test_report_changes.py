"""Change reports: the typed context, and its HTML (parsed back), Markdown, CSV and JSON renderings."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import lxml.html
import pytest
from jinja2 import StrictUndefined

from kb.diff import HhppsState, Provenance, diff_hcpcs, diff_hhpps
from reports import templating
from reports.changes import (
    CSV_COLUMNS,
    build_change_report,
    display_percent,
    render_csv,
    render_html,
    render_json,
    render_markdown,
)
from tests.test_diff import hcpcs, real_hhpps, record

HCPCS_OLD = Provenance("2018 annual", date(2018, 1, 1), "HCPC2018_CONTR_ANWEB_disc.txt")
HCPCS_NEW = Provenance("2019 annual", date(2019, 1, 1), "HCPC2019_CONTR_ANWEB.txt")
PPS_OLD = Provenance("CY2023", date(2023, 1, 1), "CMS-1766-F, 87 FR 66790")
PPS_NEW = Provenance("CY2024", date(2024, 1, 1), "CMS-1780-F, 88 FR 77676")

WATCH = ("G0151", "G0299", "1FC11")


def hcpcs_changes():
    old = hcpcs(
        record("A4563"),
        record("G0151", short_description="Hhcp-serv of pt,ea 15 min"),
        record("G0154"),
        record("G0299"),
    )
    new = hcpcs(
        record("A4563", short_description="Vag inser <rectal> | control"),
        record("G0151", short_description="Hhcp-svs of pt, ea 15 min"),
        record("G0154", termination_date=date(2016, 2, 29)),
        record("G0299", short_description="Hhs/hospice of rn ea 15 min"),
        record("G0493", long_description="<script>alert(1)</script> skilled services"),
    )
    return diff_hcpcs(old, new, old_provenance=HCPCS_OLD, new_provenance=HCPCS_NEW)


def pps_changes():
    def year(weight: str, rate: str) -> HhppsState:
        return HhppsState(
            weights={"1FC11": Decimal(weight), "1AA11": Decimal("0.9")},
            lupa_thresholds={"1FC11": 4, "1AA11": 4},
            visit_rates={}, unit_rates={}, wage_index={"99901": Decimal("0.6603")},
            constants={"thirty_day_rate": Decimal(rate)},
        )

    return diff_hhpps(year("1.1009", "2010.69"), year("1.0929", "2038.13"), old_provenance=PPS_OLD, new_provenance=PPS_NEW)


@pytest.fixture(scope="module")
def report():
    return build_change_report(hcpcs_changes() + pps_changes(), title="Changes & updates", watch_list=WATCH,
                               generated_on=date(2024, 1, 2))


@pytest.fixture(scope="module")
def page(report):
    return lxml.html.document_fromstring(render_html(report))


def test_context_groups_in_engine_order_with_watched_rows_first(report):
    assert [(g.source, g.change_type, len(g.rows)) for g in report.groups] == [
        ("hcpcs", "added", 1),
        ("hcpcs", "discontinued", 1),
        ("hcpcs", "short_description_changed", 3),
        ("hhpps", "weight_changed", 1),
        ("hhpps", "thirty_day_rate_changed", 1),
    ]
    short = report.groups[2]
    assert [row.key for row in short.rows] == ["G0151", "G0299", "A4563"]
    assert [row.key for row in report.watched_rows] == ["G0151", "G0299", "1FC11"]
    weight = report.groups[3].rows[0]
    assert (weight.old, weight.new, weight.absolute_change, weight.relative_change) == ("1.1009", "1.0929", "-0.0080", "-0.73%")
    assert report.total == 7 and [line.count for line in report.summary] == [1, 1, 3, 1, 1]


def test_html_rows_match_the_changes(page, report):
    for group in report.groups:
        section = page.get_element_by_id(f"{group.source}-{group.change_type}")
        rows = section.xpath(".//tbody/tr")
        assert len(rows) == len(group.rows)
        assert [row.xpath("string(td[1])").split()[0] for row in rows] == [r.key for r in group.rows]
    assert len(page.xpath("//section[@id='changes']//tbody/tr[contains(@class, 'change')]")) == report.total
    watched = page.get_element_by_id("watched-changes").xpath(".//tbody/tr")
    assert len(watched) == 3 and all("watched" in row.get("class") for row in watched)


def test_html_every_change_shows_its_citation(page):
    rows = page.xpath("//section[@id='changes']//tbody/tr")
    citations = [row.xpath("string(td[@class='cite']/cite[1])") for row in rows]
    assert citations == ["HCPC2019_CONTR_ANWEB.txt"] * 5 + ["CMS-1780-F, 88 FR 77676"] * 2
    sources = page.get_element_by_id("sources").xpath(".//cite/text()")
    assert "CMS-1766-F, 87 FR 66790" in sources and "HCPC2018_CONTR_ANWEB_disc.txt" in sources


def test_html_has_inline_svg_charts(page, report):
    svgs = page.xpath("//figure/svg")
    assert len(svgs) == 2  # changes by type, and the weight histogram
    type_chart = page.get_element_by_id("chart-types").xpath("./svg")[0]
    assert len(type_chart.xpath("./rect")) == len(report.summary)
    assert [int(t.text) for t in type_chart.xpath("./text[not(@text-anchor)]")] == [1, 1, 3, 1, 1]
    assert page.get_element_by_id("chart-weight_changed").xpath("./svg/rect")


def test_html_is_self_contained_printable_and_escaped(page):
    html = lxml.html.tostring(page, encoding="unicode")
    assert not page.xpath("//script | //link | //img | //iframe | //*[@src]")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "@media print" in page.xpath("string(//style)")
    assert page.xpath("string(//h1)") == "Changes & updates"
    assert "<script>alert(1)</script> skilled services" in page.xpath("string(//section[@id='hcpcs-added'])")


def test_templates_use_strict_undefined_and_escape_html_only():
    environment = templating.environment()
    assert environment.undefined is StrictUndefined
    assert environment.autoescape("changes.html.j2") and environment.autoescape("_base.html.j2")
    assert not environment.autoescape("changes.md.j2")


def test_markdown_has_one_table_row_per_change(report):
    text = render_markdown(report)
    lines = text.splitlines()
    assert lines[0] == "# Changes & updates"
    change_rows = [line for line in lines if line.startswith("| ") and "HCPC2019_CONTR_ANWEB.txt |" in line]
    assert len(change_rows) == 1 + 2 + 5  # the sources table, two watched HCPCS changes, five HCPCS changes
    assert "Vag inser \\<rectal\\> \\| control" in text  # escaped: reports.safety
    assert "## Home Health PPS: Case-mix weights changed (1)" in text


def test_csv_round_trips(report):
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(rows) == report.total
    assert tuple(rows[0]) == CSV_COLUMNS
    weight = next(row for row in rows if row["change_type"] == "weight_changed")
    assert (weight["key"], weight["old"], weight["new"], weight["watched"]) == ("1FC11", "1.1009", "1.0929", "yes")
    assert weight["citation"] == "CMS-1780-F, 88 FR 77676" and weight["old_citation"] == "CMS-1766-F, 87 FR 66790"


def test_json_keeps_exact_numbers(report):
    document = json.loads(render_json(report))
    assert document["total"] == 7 and len(document["changes"]) == 7
    rate = next(c for c in document["changes"] if c["change_type"] == "thirty_day_rate_changed")
    assert (rate["old"], rate["new"], rate["absolute_change"]) == ("2010.69", "2038.13", "27.44")
    assert document["comparisons"][1]["new_citation"] == "CMS-1780-F, 88 FR 77676"


def test_percent_text():
    assert [display_percent(v) for v in (Decimal("-0.0072667"), Decimal("0.125"), Decimal(0), None)] == [
        "-0.73%", "+12.50%", "0.00%", ""]


def test_real_weight_histogram_counts_every_weight_change():
    old, new = real_hhpps(2023), real_hhpps(2024)
    changes = diff_hhpps(old, new, old_provenance=PPS_OLD, new_provenance=PPS_NEW)
    report = build_change_report(changes, title="CY2024 HH PPS", generated_on=date(2024, 1, 2))
    histogram = next(chart for chart in report.charts if chart.chart_id == "chart-weight_changed")
    weight_changes = sum(1 for c in changes if c.change_type == "weight_changed")
    assert weight_changes > 400
    assert sum(bar.value for bar in histogram.bars) == weight_changes
    page = lxml.html.document_fromstring(render_html(report))
    assert len(page.get_element_by_id("hhpps-weight_changed").xpath(".//tbody/tr")) == weight_changes
