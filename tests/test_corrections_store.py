"""CMS's HCPCS corrections applied to the knowledge base bitemporally, on SQLite and PostgreSQL.

Most tests read one knowledge base per backend holding the real 2017, 2018 and 2019 annual
releases, each followed by its corrections (publication order). The failure modes use tiny
releases written here, with the real corrections documents or tiny ones.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
from datetime import date, timedelta
from functools import lru_cache

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb import database, queries
from kb.corrections import (
    APPLIED,
    NO_CHANGE,
    NOT_APPLIED,
    correction_identity,
    known_state,
    known_states,
    knowledge_changes,
    store_hcpcs_corrections,
)
from kb.database import transaction
from kb.models import HcpcsCode, HcpcsCorrection, HcpcsListing, HcpcsVersion, Release
from kb.store import FileIdentity, store_hcpcs_release
from loaders import hcpcs
from loaders.errors import LoadError
from loaders.hcpcs_corrections import CorrectionDocument, CorrectionEvent, FieldChange, read_corrections
from loaders.hcpcs_record import HcpcsRecord
from tests.conftest import BACKENDS, HCPCS_DIR
from tests.hcpcs_snapshot import empty, snapshot

YEARS = (2017, 2018, 2019)


def annual_path(year: int):
    return HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip"


def corrections_path(year: int):
    return HCPCS_DIR / f"{year}-HCPCS-Alpha-Numeric-Corrections.zip"


@lru_cache(maxsize=None)
def annual(year: int):
    return hcpcs.read_hcpcs(annual_path(year)), FileIdentity.of(annual_path(year))


@lru_cache(maxsize=None)
def corrections(year: int) -> tuple[list[CorrectionDocument], FileIdentity]:
    return read_corrections(corrections_path(year)), FileIdentity.of(corrections_path(year))


def store_annual(engine, year: int):
    release, identity = annual(year)
    with transaction(engine) as session:
        return store_hcpcs_release(session, release, identity)


def store_document(engine, document: CorrectionDocument, identity: FileIdentity):
    with transaction(engine) as session:
        return store_hcpcs_corrections(session, document, identity)


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
            for model in (Release, HcpcsCode, HcpcsVersion, HcpcsListing, HcpcsCorrection)
        }


_databases = itertools.count()


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, tmp_path_factory):
    """A knowledge base with 2017, 2018 and 2019, each annual release followed by its corrections:
    ``(engine, {(year, version): summary})``."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("corrections") / "hhkb.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        admin, template = request.getfixturevalue("postgres_admin")
        name = f"hhkb_corrections_{os.getpid()}_{next(_databases)}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    engine = database.open_database(url)
    summaries = {}
    for year in YEARS:
        store_annual(engine, year)
        documents, identity = corrections(year)
        for document in documents:
            summaries[(year, document.version)] = store_document(engine, document, identity)
    yield engine, summaries
    engine.dispose()
    if drop:
        drop()


def history(engine, code: str) -> queries.CodeHistory:
    with Session(engine) as session:
        return queries.code_history(session, code)


def long_description(engine, code: str, on: date, known_on: date | None = None) -> str | None:
    version = history(engine, code).version_on(on, known_on=known_on)
    return version.fields["long_description"] if version else None


# --- every row accounted for -----------------------------------------------------------------

#: (release year, version) -> (applied, no change, not applied), measured on the real documents.
OUTCOME_COUNTS = {
    (2017, 1): (12, 0, 0),
    (2018, 1): (24, 0, 0),
    (2018, 2): (4, 24, 0),
    (2018, 3): (4, 26, 0),
    (2018, 4): (2, 26, 0),
    (2019, 1): (11, 0, 0),
    (2019, 2): (3, 0, 0),
}


def test_every_row_of_every_document_has_an_outcome(loaded):
    engine, summaries = loaded
    assert sorted(summaries) == sorted(OUTCOME_COUNTS)
    with Session(engine) as session:
        for (year, version), summary in summaries.items():
            document = next(d for d in corrections(year)[0] if d.version == version)
            rows = session.execute(
                sa.select(HcpcsCorrection).where(HcpcsCorrection.release_id == summary.release.id)
                .order_by(HcpcsCorrection.source_row)
            ).scalars().all()
            assert [(r.source_row, r.code, r.kind) for r in rows] == [
                (e.source_row, e.code, e.kind) for e in document.events
            ]
            counts = tuple(sum(1 for r in rows if r.outcome == o) for o in (APPLIED, NO_CHANGE, NOT_APPLIED))
            assert counts == OUTCOME_COUNTS[(year, version)], (year, version)
            assert counts == tuple(summary.count(o) for o in (APPLIED, NO_CHANGE, NOT_APPLIED))
            assert all(r.reason for r in rows if r.outcome != APPLIED)
            makes_a_version = [r for r in rows if r.outcome == APPLIED and r.kind not in ("delete", "withdraw")]
            assert all(r.version_id is not None for r in makes_a_version)
            assert summary.other_rows == 2  # the title and the column header
            assert f"{len(rows)} corrections" in summary.describe()


def test_each_version_is_a_release_with_its_knowledge_date(loaded):
    engine, summaries = loaded
    documents, identity = corrections(2018)
    with Session(engine) as session:
        rows = queries.releases(session, "hcpcs-corrections")
    by_label = {r.label: r for r in rows}
    assert [r.label for r in rows if r.effective_date == date(2018, 1, 1)] == [
        "2018 corrections V1", "2018 corrections V2", "2018 corrections V3", "2018 corrections V4"]
    for document in documents:
        row = by_label[f"2018 corrections V{document.version}"]
        assert row.published_date == document.knowledge_date
        assert row.published_date_basis == document.knowledge_date_basis
        assert row.member == document.member and row.file_name == identity.name
        assert row.sha256 == correction_identity(document, identity).sha256 != identity.sha256
        assert "2018 annual" in row.effective_date_basis
    assert [by_label[f"2018 corrections V{v}"].published_date for v in (1, 2, 3, 4)] == [
        date(2017, 12, 22), date(2018, 1, 3), date(2018, 1, 9), date(2018, 1, 11)]


# --- what the 2018 corrections say ------------------------------------------------------------


def test_g0279_long_description_changes_in_knowledge_time_only(loaded):
    engine, _ = loaded
    annual_text = next(r.long_description for r in annual(2018)[0].records if r.code == "G0279")
    corrected = ("Diagnostic digital breast tomosynthesis, unilateral or bilateral "
                 "(list separately in addition to 77065 or 77066)")
    assert annual_text.endswith("(list separately in addition to g0204 or g0206)")
    assert long_description(engine, "G0279", date(2018, 3, 1), known_on=date(2017, 12, 1)) == annual_text
    assert long_description(engine, "G0279", date(2018, 3, 1), known_on=date(2017, 12, 21)) == annual_text
    assert long_description(engine, "G0279", date(2018, 3, 1), known_on=date(2017, 12, 22)) == corrected
    assert long_description(engine, "G0279", date(2018, 3, 1)) == corrected
    # a date the correction does not touch: what the files said, before and after
    assert long_description(engine, "G0279", date(2017, 6, 1), known_on=date(2017, 12, 1)) == annual_text
    assert long_description(engine, "G0279", date(2017, 6, 1)) == annual_text
    # the 2019 file shows the corrected text: it continues the corrected version
    g0279 = history(engine, "G0279")
    corrected_version = g0279.version_on(date(2018, 3, 1))
    assert corrected_version.first_release == "2018 corrections V1"
    assert [l.version_number for l in g0279.listings][-1] == corrected_version.number


@pytest.mark.parametrize("code", ["G9868", "G9869", "G9870"])
def test_codes_added_by_v1_are_known_from_its_date(loaded, code):
    engine, _ = loaded
    found = history(engine, code)
    assert found.version_on(date(2018, 3, 1), known_on=date(2017, 12, 21)) is None
    added = found.version_on(date(2018, 3, 1), known_on=date(2017, 12, 22))
    assert added.first_release == "2018 corrections V1"
    assert added.fields["added_date"] == date(2018, 1, 1) and added.action_code == "A"
    assert "next generation aco model" in added.fields["long_description"].lower()
    assert found.version_on(date(2017, 12, 31)) is None


@pytest.mark.parametrize("code", ["G9637", "G9638"])
def test_g9637_and_g9638_revert_to_the_2017_text(loaded, code):
    engine, _ = loaded
    text_2017 = next(r for r in annual(2017)[0].records if r.code == code)
    text_2018 = next(r for r in annual(2018)[0].records if r.code == code)
    assert text_2017.long_description != text_2018.long_description
    found = history(engine, code)
    before = found.version_on(date(2018, 3, 1), known_on=date(2017, 12, 21))
    after = found.version_on(date(2018, 3, 1))
    assert (before.fields["long_description"], before.fields["short_description"]) == (
        text_2018.long_description, text_2018.short_description)
    assert (after.fields["long_description"], after.fields["short_description"]) == (
        text_2017.long_description, text_2017.short_description)


def test_g9890_deleted_by_v2_is_unknown_for_2018_from_then(loaded):
    engine, _ = loaded
    found = history(engine, "G9890")
    listed = found.version_on(date(2018, 2, 1), known_on=date(2018, 1, 2))
    assert listed.fields["short_description"] == "Mac exam perf"
    assert found.version_on(date(2018, 2, 1), known_on=date(2018, 1, 3)) is None
    assert found.version_on(date(2018, 2, 1)) is None
    # the 2019 file reuses the code from 2018-04-01 for another service: a version of its own
    assert found.version_on(date(2018, 5, 1)).fields["long_description"].startswith("Bridge payment")


def test_codes_added_by_v2_and_withdrawn_by_v3_were_known_only_between(loaded):
    engine, _ = loaded
    for code, added, withdrawn in (("G9978", date(2018, 1, 3), date(2018, 1, 9)),
                                   ("G9989", date(2018, 1, 9), date(2018, 1, 11))):
        found = history(engine, code)
        on = date(2018, 2, 1)
        assert found.version_on(on, known_on=added - timedelta(days=1)) is None
        assert found.version_on(on, known_on=added).fields["short_description"] == "Mac exam perf"
        assert found.version_on(on, known_on=withdrawn) is None


def test_knowledge_changes_of_the_2018_corrections(loaded):
    engine, _ = loaded
    with Session(engine) as session:
        changes = knowledge_changes(session, effective=date(2018, 3, 1), known_before=date(2017, 12, 21),
                                    known_after=date(2018, 1, 31))
    found = {(c.change_type, c.key, c.field) for c in changes}
    descriptions = {"G0279", "G9367", "G9368", "G9637", "G9638", *(f"G{n}" for n in range(9481, 9491))}
    assert found == {
        *{("added", code, None) for code in ("G9868", "G9869", "G9870")},
        *{("discontinued", code, None) for code in ("G9890", "G9891")},
        *{("long_description_changed", code, "long_description") for code in descriptions},
        *{("short_description_changed", code, "short_description")
          for code in ("G9367", "G9368", "G9490", "G9637", "G9638")},
        *{("administrative_data_changed", code, "asc_group") for code in ("C9488", "C9745", "C9746", "C9747", "C9748")},
        ("administrative_data_changed", "G0499", "lab_certifications"),
    }
    lab = next(c for c in changes if c.key == "G0499")
    assert (lab.old, lab.new) == (("140",), ("140", "220"))
    assert "2018 corrections V4" in changes[0].new_provenance.citation
    assert "2018 corrections" not in changes[0].old_provenance.citation


def test_the_corrections_leave_other_effective_dates_alone(loaded):
    engine, _ = loaded
    with Session(engine) as session:
        changes = knowledge_changes(session, effective=date(2017, 6, 1), known_before=date(2017, 12, 21),
                                    known_after=date(2018, 1, 31))
    # only C9488, whose corrected ASC group is effective 2017-04-01 (C9745-C9747 from 2017-07-01)
    assert [(c.key, c.field, c.old, c.new) for c in changes] == [("C9488", "asc_group", "", "YY")]


def test_known_states_match_the_code_histories(loaded):
    engine, _ = loaded
    on, known = date(2018, 3, 1), (date(2017, 12, 1), date(2018, 2, 1))
    with Session(engine) as session:
        states = known_states(session, effective=on, known_before=known[0], known_after=known[1])
        assert known_state(session, effective=on, known_on=known[1]) == states[1]
    assert len(states[0]) > 5000 and set(states[1]) - set(states[0]) == {"G9868", "G9869", "G9870"}
    for state, known_on in zip(states, known):
        for code in ("G0279", "G0151", "G9637", "C9488", "G9890"):
            version = history(engine, code).version_on(on, known_on=known_on)
            assert (state[code].state() if code in state else None) == (
                tuple(version.fields.values()) if version else None), (code, known_on)


# --- what the 2017 and 2019 corrections say ---------------------------------------------------


def test_g0477_terminated_by_the_2017_corrections(loaded):
    engine, _ = loaded
    found = history(engine, "G0477")
    assert found.version_on(date(2017, 6, 1), known_on=date(2016, 12, 1)) is not None
    assert found.version_on(date(2017, 6, 1), known_on=date(2016, 12, 14)) is None
    assert found.version_on(date(2016, 6, 1)) is not None
    assert "terminated 2016-12-31" in found.explain(date(2017, 6, 1))


def test_a_discontinued_codes_record_is_corrected_as_a_whole(loaded):
    engine, _ = loaded
    e0628 = history(engine, "E0628")  # terminated 2016-12-31 in the 2017 file; xref Q0078 removed
    assert e0628.version_on(date(2016, 6, 1), known_on=date(2016, 12, 1)).fields["cross_references"] == ("Q0078",)
    assert e0628.version_on(date(2016, 6, 1)).fields["cross_references"] == ()
    c9468 = history(engine, "C9468")  # terminated 2018-12-31 in the 2019 file; xref J7023 -> J7203
    assert c9468.version_on(date(2018, 6, 1), known_on=date(2018, 12, 1)).fields["cross_references"] == ("J7023",)
    assert c9468.version_on(date(2018, 6, 1)).fields["cross_references"] == ("J7203",)


def test_a_rows_own_effective_date_splits_the_version(loaded):
    engine, _ = loaded
    q9994 = history(engine, "Q9994")  # coverage C and price 39 from 2018-12-03
    assert q9994.version_on(date(2018, 11, 15)).fields["coverage_code"] == "D"
    assert q9994.version_on(date(2018, 12, 10)).fields["coverage_code"] == "C"
    assert q9994.version_on(date(2018, 12, 10)).fields["pricing_indicators"] == ("39",)
    assert q9994.version_on(date(2018, 12, 10), known_on=date(2018, 12, 19)).fields["coverage_code"] == "D"


def test_the_2019_corrections(loaded):
    engine, summaries = loaded
    a5513 = history(engine, "A5513").version_on(date(2019, 2, 1))
    assert (a5513.action_code, a5513.action_effective_date) == ("F", date(2019, 1, 1))
    c1890 = history(engine, "C1890")  # added by V1, its ASC group by V2
    assert c1890.version_on(date(2019, 2, 1), known_on=date(2018, 12, 20)).fields["asc_group"] == ""
    assert c1890.version_on(date(2019, 2, 1)).fields["asc_group"] == "YY"
    assert c1890.version_on(date(2019, 2, 1)).fields["statute"] == "1833(t)"
    # DA: dropped from the 2019 file (so ended 2019-01-01), then "removed in error - add back to file"
    da = next(o for o in summaries[(2019, 2)].outcomes if o.code == "DA")
    assert da.outcome == APPLIED
    assert history(engine, "DA").version_on(date(2019, 2, 1), known_on=date(2019, 1, 2)) is None
    assert history(engine, "DA").version_on(date(2019, 2, 1)) is not None


def test_loading_everything_again_changes_nothing(loaded):
    engine, _ = loaded
    counts = table_counts(engine)
    for year in YEARS:
        assert store_annual(engine, year).already_loaded
        documents, identity = corrections(year)
        for document in documents:
            summary = store_document(engine, document, identity)
            assert summary.already_loaded and "nothing changed" in summary.describe()
    assert table_counts(engine) == counts


# --- tiny releases: outcomes and failure modes ------------------------------------------------

TINY = FileIdentity(name="tiny-corrections.zip", sha256="c" * 64, size=1)


def tiny_record(code: str, **values) -> HcpcsRecord:
    defaults = dict(
        kind="procedure", sequence_number=10, long_description=f"Long {code}", short_description=f"Short {code}",
        pricing_indicators=("00",), multiple_pricing_indicator="", coverage_issues_refs=(), carriers_manual_refs=(),
        statute="", lab_certifications=(), cross_references=(), coverage_code="C", asc_group="",
        asc_effective_date=None, opps_group="", opps_payment_indicator="", opps_effective_date=None,
        processing_note="", betos="", type_of_service=("1",), anesthesia_base_units="",
        added_date=date(2015, 1, 1), action_effective_date=date(2015, 1, 1), termination_date=None,
        action_code="N", source_line=1,
    )
    return HcpcsRecord(code=code, **{**defaults, **values})


def store_tiny_release(engine, year: int, *records: HcpcsRecord, published: date | None = None):
    release = hcpcs.HcpcsRelease(
        path=f"tiny-{year}.txt", member=None, file_format="txt", records=records,
        effective_date=date(year, 1, 1), effective_date_basis="test",
        published_date=published or date(year - 1, 11, 1), published_date_basis="test", label=f"{year} annual",
    )
    with transaction(engine) as session:
        return store_hcpcs_release(session, release, FileIdentity(f"tiny-{year}.txt", f"{year}".rjust(64, "0"), 1))


def tiny_document(year: int, version: int, *events: CorrectionEvent, known: date | None = None) -> CorrectionDocument:
    return CorrectionDocument(
        path="tiny-corrections.zip", member=f"V{version}_corrections.xlsx", release_year=year, version=version,
        knowledge_date=known or date(year - 1, 12, 20), knowledge_date_basis="test",
        events=events, unapplied=((1, f"{year} HCPCS CORRECTIONS", "document title: names the release corrected"),),
    )


def event(code: str, kind: str, *changes: FieldChange, row: int = 5, effective: date | None = None,
          **options) -> CorrectionEvent:
    return CorrectionEvent(code=code, action_text=kind, kind=kind, changes=changes,
                           effective_date=effective or date(2018, 1, 1), source_row=row, **options)


def test_include_exclude_and_rows_that_cannot_apply(engine):
    store_tiny_release(engine, 2018, tiny_record("A0001", lab_certifications=("140",), cross_references=("B0001",)),
                       tiny_record("A0002"))
    summary = store_document(engine, tiny_document(
        2018, 1,
        event("A0001", "revise", FieldChange("lab_certifications", "220", "include"), row=5),
        event("A0001", "revise", FieldChange("lab_certifications", "140", "include"), row=6),
        event("A0001", "revise", FieldChange("cross_references", "Q0080", "exclude"), row=7),
        event("Z9999", "revise", FieldChange("long_description", "Text"), row=8),
        event("A0002", "withdraw", row=9),
        event("Z9999", "delete", row=10),
        event("A0002", "delete", row=11),
        event("A0002", "revise", FieldChange("long_description", "Text"), row=12),
    ), TINY)
    assert [(o.source_row, o.outcome) for o in summary.outcomes] == [
        (5, APPLIED), (6, NO_CHANGE), (7, NO_CHANGE), (8, NOT_APPLIED), (9, NOT_APPLIED), (10, NOT_APPLIED),
        (11, APPLIED), (12, NOT_APPLIED)]
    assert "no version of A0002 is known to be in force from 2018-01-01" in summary.outcomes[7].reason
    assert "2018 annual does not list it" in summary.outcomes[3].reason
    assert "no earlier correction" in summary.outcomes[4].reason
    a0001 = history(engine, "A0001")
    assert a0001.version_on(date(2018, 2, 1)).fields["lab_certifications"] == ("140", "220")
    assert a0001.version_on(date(2017, 2, 1)).fields["lab_certifications"] == ("140",)
    assert a0001.version_on(date(2018, 2, 1), known_on=date(2017, 12, 19)).fields["lab_certifications"] == ("140",)


def test_withdrawing_a_correction_of_a_listed_code_is_reported(engine):
    store_tiny_release(engine, 2018, tiny_record("A0001"))
    identity = TINY
    store_document(engine, tiny_document(2018, 1, event("A0001", "revise", FieldChange("long_description", "New"))),
                   identity)
    summary = store_document(engine, tiny_document(2018, 2, event("A0001", "withdraw"), known=date(2017, 12, 28)),
                             identity)
    [outcome] = summary.outcomes
    assert outcome.outcome == NOT_APPLIED and "not recorded" in outcome.reason


def assert_load_error(error: pytest.ExceptionInfo, *, path: str, line: int, field: str, text: str) -> None:
    assert path in error.value.path
    assert (error.value.line, error.value.field) == (line, field)
    assert text in str(error.value)


def test_corrections_loaded_before_their_release_wait_for_it(engine):
    documents, identity = corrections(2018)
    summary = store_document(engine, documents[0], identity)
    assert summary.count(NOT_APPLIED) == summary.records > 0
    assert {o.reason for o in summary.outcomes} == {
        "waiting for the 2018 annual release, which this document corrects: it is not loaded"}
    assert table_counts(engine)["hcpcs_version"] == 0
    assert store_annual(engine, 2018).reapplied == 1
    store_annual(engine, 2017)
    after = snapshot(engine)
    empty(engine)
    store_annual(engine, 2017)
    store_annual(engine, 2018)
    store_document(engine, documents[0], identity)
    assert snapshot(engine) == after
    assert long_description(engine, "G0279", date(2018, 3, 1), known_on=date(2018, 1, 31)) != long_description(
        engine, "G0279", date(2018, 3, 1), known_on=date(2017, 12, 1))


def test_versions_wait_for_the_versions_before_them(engine):
    store_tiny_release(engine, 2018, tiny_record("A0001"))
    document = tiny_document(2018, 2, event("A0001", "revise", FieldChange("long_description", "Second")),
                             known=date(2017, 12, 28))
    summary = store_document(engine, document, TINY)
    [outcome] = summary.outcomes
    assert outcome.outcome == NOT_APPLIED
    assert outcome.reason == "waiting for version 1 of the 2018 corrections: versions are applied in order"
    assert long_description(engine, "A0001", date(2018, 3, 1)) == "Long A0001"
    first = store_document(engine, tiny_document(2018, 1, event("A0001", "revise", FieldChange("long_description", "First"))),
                           TINY)
    assert first.reapplied == 1
    assert long_description(engine, "A0001", date(2018, 3, 1)) == "Second"
    assert long_description(engine, "A0001", date(2018, 3, 1), known_on=date(2017, 12, 21)) == "First"


def test_a_version_already_loaded_from_another_file_is_refused(engine):
    store_tiny_release(engine, 2018, tiny_record("A0001"))
    store_document(engine, tiny_document(2018, 1), TINY)
    with pytest.raises(LoadError) as error:
        store_document(engine, tiny_document(2018, 1), dataclasses.replace(TINY, sha256="d" * 64))
    assert_load_error(error, path="tiny-corrections.zip!V1_corrections.xlsx", line=1, field="version",
                      text="already loaded from another file")


def test_corrections_loaded_after_a_later_release_are_applied_before_it(engine):
    a0001 = tiny_record("A0001")
    document = tiny_document(2018, 1, event("A0001", "revise", FieldChange("long_description", "Corrected")))
    store_tiny_release(engine, 2018, a0001)
    store_document(engine, document, TINY)
    store_tiny_release(engine, 2019, a0001)  # published 2018-11-01, after the corrections
    in_order = snapshot(engine)
    empty(engine)
    store_tiny_release(engine, 2018, a0001)
    store_tiny_release(engine, 2019, a0001)
    assert store_document(engine, document, TINY).reapplied == 1
    assert snapshot(engine) == in_order
    assert long_description(engine, "A0001", date(2019, 3, 1)) == "Long A0001"  # 2019 lists the old text again
    assert long_description(engine, "A0001", date(2018, 3, 1)) == "Corrected"


def test_a_revert_to_a_release_not_loaded_waits_for_it(engine):
    # the real 2018 V1 on a release listing G0279 (row 10, applied) and G9637 (row 14 reverts to 2017)
    records = {r.code: r for r in annual(2018)[0].records}
    store_tiny_release(engine, 2018, records["G0279"], records["G9637"])
    documents, identity = corrections(2018)
    summary = store_document(engine, documents[0], identity)
    row_14 = next(o for o in summary.outcomes if o.source_row == 14)
    assert (row_14.code, row_14.outcome) == ("G9637", NOT_APPLIED)
    assert row_14.reason == "G9637 goes back to the 2017 release, which is not loaded: applied when it is"
    assert not long_description(engine, "G0279", date(2018, 3, 1)).endswith("g0204 or g0206)")  # row 10 applied
    listed_2018 = long_description(engine, "G9637", date(2018, 3, 1))
    earlier = {r.code: r for r in annual(2017)[0].records}
    g9637 = earlier["G9637"]
    store_tiny_release(engine, 2017, g9637, earlier["G9638"])  # V1 row 15 reverts G9638 too
    assert long_description(engine, "G9637", date(2018, 3, 1)) == g9637.long_description != listed_2018


def test_a_revert_to_a_release_that_does_not_list_the_code_fails(engine):
    store_tiny_release(engine, 2017, tiny_record("A0001"))
    store_tiny_release(engine, 2018, tiny_record("A0001"), tiny_record("A0002"))
    document = tiny_document(2018, 1, event("A0002", "revert", FieldChange("long_description", None),
                                            row=7, revert_to_year=2017))
    with pytest.raises(LoadError) as error:
        store_document(engine, document, TINY)
    assert_load_error(error, path="tiny-corrections.zip", line=7, field="CODE", text="which does not list it")


def test_an_action_text_too_long_to_keep_is_refused(engine):
    store_tiny_release(engine, 2018, tiny_record("A0001"))
    long_event = dataclasses.replace(event("A0001", "revise", row=9), action_text="Revise " + "x" * 400)
    with pytest.raises(LoadError) as error:
        store_document(engine, tiny_document(2018, 1, event("A0001", "delete"), long_event), TINY)
    assert_load_error(error, path="tiny-corrections.zip", line=9, field="ACTION", text="longer than 400 characters")


def test_a_document_read_from_a_file_of_its_own_is_known_from_its_effective_date(engine, tmp_path):
    """No member date and no file-system date: known from the corrected release's effective date,
    as an HCPCS release without a publication date is, and the basis says so."""
    from tests.test_loader_hcpcs_corrections import corrections_text

    store_tiny_release(engine, 2018, tiny_record("G0151"))
    path = tmp_path / "hcpc2018_corrections.txt"
    path.write_text(corrections_text("G0151\tRevise Long Desc\t\t\tPhysical therapy services"))
    os.utime(path, (1_600_000_000, 1_600_000_000))
    [document] = read_corrections(path)
    summary = store_document(engine, document, FileIdentity.of(path))
    assert summary.count(APPLIED) == 1
    assert (summary.release.published_date, summary.release.published_date_basis) == (
        date(2018, 1, 1),
        "no publication date in the file (a corrections document outside CMS's zip has no member date); "
        "taken as known from its effective date, the corrected release's",
    )
    with Session(engine) as session:
        history = queries.code_history(session, "G0151")
    corrected = history.version_on(date(2018, 3, 1))
    assert (corrected.known_from, corrected.fields["long_description"]) == (date(2018, 1, 1), "Physical therapy services")
    assert history.version_on(date(2018, 3, 1), known_on=date(2017, 12, 31)).fields["long_description"] == "Long G0151"
