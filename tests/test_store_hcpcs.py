"""HCPCS releases stored as versioned codes with provenance, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import lru_cache

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb import queries
from kb.database import transaction
from kb.models import HcpcsCode, HcpcsListing, HcpcsVersion, Release
from kb.store import FileIdentity, store_hcpcs_release
from loaders import hcpcs
from loaders.errors import LoadError
from tests.conftest import HCPCS_DIR
from tests.hcpcs_snapshot import empty, snapshot

ANNUAL = {
    2017: HCPCS_DIR / "2017-Alpha-Numeric-HCPCS-File.zip",
    2018: HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip",
    2019: HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip",
}


@lru_cache(maxsize=None)
def parsed(year: int):
    return hcpcs.read_hcpcs(ANNUAL[year]), FileIdentity.of(ANNUAL[year])


def store(engine, year: int):
    release, identity = parsed(year)
    with transaction(engine) as session:
        return store_hcpcs_release(session, release, identity)


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
            for model in (Release, HcpcsCode, HcpcsVersion, HcpcsListing)
        }


@pytest.fixture
def three_years(engine):
    for year in (2017, 2018, 2019):
        store(engine, year)
    return engine


def history(engine, code):
    with Session(engine) as session:
        return queries.code_history(session, code)


def test_each_release_is_recorded_with_its_provenance(three_years):
    with Session(three_years) as session:
        rows = queries.releases(session, "hcpcs")
    assert [(r.label, r.record_count, r.effective_date) for r in rows] == [
        ("2017 annual", 6498, date(2017, 1, 1)),
        ("2018 annual", 6559, date(2018, 1, 1)),
        ("2019 annual", 6800, date(2019, 1, 1)),
    ]
    for row, year in zip(rows, (2017, 2018, 2019)):
        assert row.sha256 == FileIdentity.of(ANNUAL[year]).sha256
        assert row.published_date < row.effective_date
        assert row.effective_date_basis and row.published_date_basis


def test_g0151_is_one_unbroken_version_across_2017_to_2019(three_years):
    g0151 = history(three_years, "G0151")
    assert len(g0151.versions) == 1
    version = g0151.versions[0]
    assert (version.first_release, version.last_release) == ("2017 annual", "2019 annual")
    assert version.effective_to is None
    assert [l.release_label for l in g0151.listings] == ["2017 annual", "2018 annual", "2019 annual"]


def test_g0154_terminated_2016_02_29_answers_by_date(three_years):
    g0154 = history(three_years, "G0154")
    assert g0154.versions[0].fields["termination_date"] == date(2016, 2, 29)
    assert g0154.version_on(date(2015, 6, 1)) is not None
    assert g0154.version_on(date(2016, 2, 29)) is not None
    assert g0154.version_on(date(2016, 3, 1)) is None
    assert g0154.version_on(date(2017, 6, 1)) is None
    assert "terminated 2016-02-29" in g0154.explain(date(2017, 6, 1))
    assert len(g0154.listings) == 3  # still listed in every release


@pytest.mark.parametrize("code", ["G0493", "G0494", "G0495", "G0496"])
def test_home_health_codes_added_2017(three_years, code):
    found = history(three_years, code)
    assert found.versions[0].fields["added_date"] == date(2017, 1, 1)
    assert found.versions[0].effective_from == date(2017, 1, 1)
    assert [l.action_code for l in found.listings] == ["A", "N", "N"]
    assert found.version_on(date(2016, 12, 31)) is None


def test_a_redescribed_code_answers_by_knowledge_time(three_years):
    release_2019, _ = parsed(2019)
    release_2018, _ = parsed(2018)
    before = {r.code: r for r in release_2018.records}
    changed = next(
        r for r in release_2019.records
        if r.action_code == "C" and r.code in before and r.long_description != before[r.code].long_description
    )
    found = history(three_years, changed.code)
    published_2019 = found.listings[-1].published_date
    on = date(2019, 6, 1)
    old = found.version_on(on, known_on=published_2019.replace(day=1) if published_2019.day > 1 else date(2018, 10, 1))
    new = found.version_on(on)
    assert old.fields["long_description"] == before[changed.code].long_description
    assert new.fields["long_description"] == changed.long_description
    # effective time alone: the day before the action took effect the old text applies, whatever we know now
    starts = min(changed.action_effective_date, date(2019, 1, 1))
    assert found.version_on(starts).fields["long_description"] == changed.long_description
    day_before = date.fromordinal(starts.toordinal() - 1)
    assert found.version_on(day_before).fields["long_description"] == before[changed.code].long_description


def test_loading_the_same_file_twice_changes_nothing(engine):
    first = store(engine, 2017)
    counts = table_counts(engine)
    again = store(engine, 2017)
    assert again.already_loaded and again.release.id == first.release.id
    assert table_counts(engine) == counts


def test_a_failed_store_leaves_the_database_as_it_was(engine):
    store(engine, 2017)
    counts = table_counts(engine)
    release, identity = parsed(2018)
    duplicated = dataclasses.replace(release, records=release.records + (release.records[-1],))
    with pytest.raises(LoadError, match="listed twice"):
        with transaction(engine) as session:
            store_hcpcs_release(session, duplicated, dataclasses.replace(identity, sha256="0" * 64))
    assert table_counts(engine) == counts


def test_a_release_loaded_after_a_later_one_is_applied_before_it(engine):
    store(engine, 2017)
    store(engine, 2018)
    in_order = snapshot(engine)
    empty(engine)
    store(engine, 2018)
    summary = store(engine, 2017)
    assert summary.reapplied == 1 and "which was applied again after it" in summary.describe()
    assert snapshot(engine) == in_order


def test_a_second_file_of_the_same_release_supersedes_only_what_differs(engine):
    """The xlsx of a loaded release adds a release row; states that differ from the txt supersede
    the txt's versions in knowledge time; identical states add nothing."""
    store(engine, 2019)
    counts = table_counts(engine)
    txt, _ = parsed(2019)
    xlsx = hcpcs.read_hcpcs(f"{ANNUAL[2019]}!HCPC2019_CONTR_ANWEB.xlsx")
    by_code = {r.code: r.state() for r in txt.records}
    differing = sum(1 for r in xlsx.records if by_code[r.code] != r.state())
    with transaction(engine) as session:
        summary = store_hcpcs_release(session, xlsx, FileIdentity("HCPC2019_CONTR_ANWEB.xlsx", "1" * 64, 1))
    assert summary.new_codes == 0
    assert summary.new_versions == summary.superseded_versions == differing
    after = table_counts(engine)
    assert after["hcpcs_version"] == counts["hcpcs_version"] + differing
    assert after["release"] == counts["release"] + 1


def test_a_code_dropped_without_a_termination_date_ends_where_the_next_release_begins(three_years):
    da = history(three_years, "DA")  # listed in 2017 and 2018 with no termination date, absent from 2019
    assert [l.release_label for l in da.listings] == ["2017 annual", "2018 annual"]
    assert da.version_on(date(2018, 12, 31)) is not None
    assert da.version_on(date(2019, 1, 1)) is None
    assert da.version_on(date(2019, 1, 1), known_on=date(2018, 6, 1)) is not None  # not yet known to end


def test_a_file_published_before_loaded_corrections_is_applied_before_them(engine):
    from kb.corrections import store_hcpcs_corrections
    from loaders.hcpcs_corrections import read_corrections

    corrections = HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip"
    xlsx = hcpcs.read_hcpcs(f"{ANNUAL[2018]}!HCPC2018_CONTR_ANWEB_disc.xlsx")

    def store_corrections():
        with transaction(engine) as session:
            return store_hcpcs_corrections(session, read_corrections(corrections)[0], FileIdentity.of(corrections))

    def store_xlsx():
        with transaction(engine) as session:
            return store_hcpcs_release(session, xlsx, FileIdentity("HCPC2018_CONTR_ANWEB_disc.xlsx", "2" * 64, 1))

    store(engine, 2017)
    store(engine, 2018)
    store_xlsx()
    store_corrections()
    in_order = snapshot(engine)
    empty(engine)
    store(engine, 2017)
    store(engine, 2018)
    store_corrections()
    assert store_xlsx().reapplied == 1
    assert snapshot(engine) == in_order
