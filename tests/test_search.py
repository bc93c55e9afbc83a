"""Search reads an index of the latest descriptions made once per set of loaded files, on SQLite
and PostgreSQL: a load is seen by the next search; the ranking treats ``%`` and ``_`` as characters."""

from __future__ import annotations

import shutil

from sqlmodel import Session

from kb import database, queries
from kb.database import transaction
from kb.store import FileIdentity, store_hcpcs_release
from loaders import hcpcs
from tests.conftest import HCPCS_DIR


def store(engine, year: int) -> None:
    path = HCPCS_DIR / f"{year}-Alpha-Numeric-HCPCS-File.zip"
    with transaction(engine) as session:
        store_hcpcs_release(session, hcpcs.read_hcpcs(path), FileIdentity.of(path))


def search(engine, text: str, limit: int = 50) -> list[queries.SearchHit]:
    with Session(engine) as session:
        return queries.search_codes(session, text, limit=limit)


def test_the_index_is_made_once_and_a_load_is_seen_by_the_next_search(engine):
    store(engine, 2018)
    assert "G0068" not in [hit.code for hit in search(engine, "infusion drug in home")]  # listed from 2019
    with Session(engine) as session:
        made = queries.search_index(session)
        assert queries.search_index(session) is made
    store(engine, 2019)
    hits = search(engine, "infusion drug in home")
    assert hits[0].code == "G0068" and hits[0].short_description == "Adm of infusion drug in home"
    with Session(engine) as session:
        assert queries.search_index(session) is not made


def test_each_database_has_its_own_index(engine, tmp_path, sqlite_template):
    store(engine, 2019)
    path = tmp_path / "other.sqlite3"
    shutil.copyfile(sqlite_template, path)
    other = database.open_database(f"sqlite:///{path}")
    try:
        assert search(other, "infusion drug in home") == []
        assert [hit.code for hit in search(engine, "infusion drug in home")][:1] == ["G0068"]
    finally:
        other.dispose()


def test_percent_is_a_character_in_the_ranking_too(engine):
    store(engine, 2018)
    hits = search(engine, "%", limit=500)
    in_short = ["%" in hit.short_description for hit in hits]
    assert True in in_short and False in in_short  # both kinds, so the order below says something
    assert in_short == sorted(in_short, reverse=True)  # the phrase in the short description ranks first
    assert all("%" in hit.long_description for hit, short in zip(hits, in_short) if not short)
    assert [hit.code for hit in search(engine, "_")] == []  # no description holds an underscore


def test_ranking_code_then_prefix_then_short_then_long(engine):
    store(engine, 2018)
    codes = [hit.code for hit in search(engine, "g0156")]
    assert codes[0] == "G0156"
    hits = search(engine, "G015", limit=500)
    assert [hit.code for hit in hits][:10] == sorted(hit.code for hit in hits if hit.code.startswith("G015"))[:10]
    aide = search(engine, "home health aide", limit=500)
    ranks = [0 if "home health aide" in hit.short_description.lower() else
             1 if "home health aide" in hit.long_description.lower() else 2 for hit in aide]
    assert ranks == sorted(ranks) and "G0156" in [hit.code for hit in aide]
    assert all(all(word in f"{hit.code}\n{hit.short_description}\n{hit.long_description}".lower()
                   for word in ("home", "health", "aide")) for hit in aide)
