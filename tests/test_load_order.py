"""HCPCS files loaded in any order give what loading them in publication order gives.

The files: the 2017, 2018 and 2019 annual releases, their corrections (2017 V1, 2018 V1-V4, 2019
V1-V2), the April and July 2020 quarterly workbooks and CMS's January 2023 workbook. Each is
parsed once per session; each load below is one file in one transaction, as one ``hhkb load`` of
that file. The orders are a fixed handful: newest first with corrections before their release,
and a permutation drawn with a fixed seed, so the test is deterministic and bounded in time (each
order re-applies the stored files many times: a few orders cost tens of seconds).
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from functools import lru_cache

import pytest
from sqlmodel import Session

from kb import queries
from kb.corrections import store_hcpcs_corrections
from kb.database import transaction
from kb.ingest import load_files
from kb.store import FileIdentity, store_hcpcs_release
from loaders import hcpcs
from loaders.hcpcs_corrections import read_corrections
from tests.conftest import HCPCS_DIR
from tests.hcpcs_snapshot import answers, empty, snapshot

ANNUAL = [HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip" for year in (2017, 2018, 2019)]
QUARTERS = [HCPCS_DIR / "2020-04" / "anweb.xlsx", HCPCS_DIR / "2020-07" / "anweb.xlsx"]
JANUARY_2023 = HCPCS_DIR / "2023-01" / "HCPC2023_JAN_ANWEB_v3.xlsx"
CORRECTIONS = [HCPCS_DIR / f"{year}-HCPCS-Alpha-Numeric-Corrections.zip" for year in (2017, 2018, 2019)]

CODES = ["G0154", "G0151", "G0279", "G9978", "G9979", "G0320", "J9999", "DA", "G9890", "G9637", "C9488",
         "A5513", "Q9994", "E0628", "C1890"]
DATES = [date(2016, 6, 1), date(2017, 6, 1), date(2018, 3, 1), date(2019, 6, 1), date(2020, 5, 1),
         date(2020, 8, 1), date(2023, 3, 1)]
KNOWN_ON = [None, date(2016, 12, 31), date(2017, 12, 1), date(2018, 1, 31), date(2019, 2, 1), date(2020, 5, 1),
            date(2022, 12, 31)]


@dataclasses.dataclass(frozen=True)
class File:
    """One file to load: an HCPCS release, or one version of a corrections document."""

    name: str
    content: object
    identity: FileIdentity
    published: date

    def store(self, engine):
        with transaction(engine) as session:
            if isinstance(self.content, hcpcs.HcpcsRelease):
                return store_hcpcs_release(session, self.content, self.identity)
            return store_hcpcs_corrections(session, self.content, self.identity)


@lru_cache(maxsize=None)
def files() -> tuple[File, ...]:
    """Every file, in publication order."""
    found = []
    for path in ANNUAL + QUARTERS + [JANUARY_2023]:
        release = hcpcs.read_hcpcs(path)
        found.append(File(release.label, release, FileIdentity.of(path), release.published_date))
    for path in CORRECTIONS:
        for document in read_corrections(path):
            found.append(File(f"{document.release_year} corrections V{document.version}", document,
                              FileIdentity.of(path), document.knowledge_date))
    return tuple(sorted(found, key=lambda f: (f.published, f.name)))


def load(engine, order) -> list:
    return [file.store(engine) for file in order]


def orders() -> dict[str, list[File]]:
    every = list(files())
    releases = [f for f in every if isinstance(f.content, hcpcs.HcpcsRelease)]
    documents = [f for f in every if f not in releases]
    sampled = {}
    for seed in (11,):
        shuffled = list(every)
        random.Random(seed).shuffle(shuffled)
        sampled[f"shuffled with seed {seed}"] = shuffled
    return {
        "newest first, corrections before their release": documents[::-1] + releases[::-1],
        **sampled,
    }


@pytest.fixture(scope="module")
def in_publication_order_results():
    """The expected tables and answers, per backend (filled by the first test on each)."""
    return {}


@pytest.mark.parametrize("order_name", list(orders()))
def test_any_load_order_gives_the_publication_order_result(engine, order_name, in_publication_order_results):
    backend = engine.dialect.name
    if backend not in in_publication_order_results:
        summaries = load(engine, files())
        assert not any(s.reapplied for s in summaries)
        in_publication_order_results[backend] = (snapshot(engine), answers(engine, CODES, DATES, KNOWN_ON))
        empty(engine)
    expected_tables, expected_answers = in_publication_order_results[backend]
    summaries = load(engine, orders()[order_name])
    assert any(s.reapplied for s in summaries)
    tables = snapshot(engine)
    for table in expected_tables:
        assert tables[table] == expected_tables[table], table
    assert answers(engine, CODES, DATES, KNOWN_ON) == expected_answers


def test_the_answers_compared_are_the_known_ones(engine):
    """The publication-order answers the property test compares against say what CMS's files say."""
    load(engine, files())
    with Session(engine) as session:
        g0154 = queries.code_history(session, "G0154")
        g0279 = queries.code_history(session, "G0279")
        g9978 = queries.code_history(session, "G9978")
        g0320 = queries.code_history(session, "G0320")
    assert g0154.explain(date(2017, 6, 1)) == "G0154 was not in effect on 2017-06-01: terminated 2016-02-29"
    assert g0279.version_on(date(2018, 3, 1), known_on=date(2017, 12, 1)).number == 1
    assert g0279.version_on(date(2018, 3, 1), known_on=date(2018, 1, 31)).number == 3
    assert g9978.version_on(date(2018, 3, 1), known_on=date(2018, 1, 5)) is not None  # added by 2018 V2
    assert g9978.version_on(date(2018, 3, 1), known_on=date(2018, 1, 31)) is None  # withdrawn by V3
    assert g0320.version_on(date(2023, 3, 1)).first_release == "2023 annual"


def test_separate_load_calls_newest_first(engine):
    """``hhkb load`` of one folder or file at a time, today's release first, history later."""
    expected = None
    for calls in (
        [[ANNUAL[0], ANNUAL[1], CORRECTIONS[1], QUARTERS[1]]],
        [[QUARTERS[1]], [CORRECTIONS[1]], [ANNUAL[1], ANNUAL[0]]],
    ):
        for paths in calls:
            load_files(engine, paths)
        if expected is None:
            expected = snapshot(engine)
            empty(engine)
    assert snapshot(engine) == expected


def test_a_release_without_a_publication_date_is_known_from_its_effective_date(engine):
    release = dataclasses.replace(files()[0].content, published_date=None,
                                  published_date_basis="no publication date in the file (test)")
    summary = File("undated", release, dataclasses.replace(files()[0].identity, sha256="e" * 64), date.min).store(engine)
    assert summary.release.published_date == release.effective_date == date(2017, 1, 1)
    assert summary.release.published_date_basis == (
        "no publication date in the file (test); taken as known from its effective date")


def test_a_file_effective_later_but_published_earlier_is_refused(engine):
    from loaders.errors import LoadError
    from tests.hcpcs_snapshot import snapshot as tables

    first, second = [f for f in files() if isinstance(f.content, hcpcs.HcpcsRelease)][:2]
    first.store(engine)
    before = tables(engine)
    later = dataclasses.replace(second.content, published_date=date(2016, 1, 1))
    with pytest.raises(LoadError, match="a file effective later must not be published earlier") as error:
        File("odd", later, second.identity, date(2016, 1, 1)).store(engine)
    assert error.value.field == "published date"
    assert tables(engine) == before


# --- the January 2023 workbook ---------------------------------------------------------------


def test_the_january_2023_workbook_is_read_from_its_content():
    release = next(f.content for f in files() if f.name == "2023 annual")
    assert len(release.records) == 7785
    assert (release.effective_date, release.effective_date_basis) == (date(2023, 1, 1), "sheet name HCPC2023_JAN_Contr")
    assert (release.published_date, release.published_date_basis) == (
        date(2022, 12, 21), "last-modified date in the xlsx document properties")
    g0320 = next(r for r in release.records if r.code == "G0320")
    assert g0320.long_description.startswith("Home health services furnished using synchronous telemedicine")


def test_g0320_answers_from_the_2023_release(engine):
    newest_first = [f for f in files() if isinstance(f.content, hcpcs.HcpcsRelease)][::-1][:2]
    load(engine, newest_first)  # 2023-01, then 2020-07
    with Session(engine) as session:
        g0320 = queries.code_history(session, "G0320")
    version = g0320.version_on(date(2023, 3, 1))
    assert version.first_release == "2023 annual" and version.known_from == date(2022, 12, 21)
    assert g0320.explain(date(2023, 3, 1)) == f"G0320 was in effect on 2023-03-01: version {version.number}"
    assert g0320.version_on(date(2023, 3, 1), known_on=date(2022, 12, 1)) is None
