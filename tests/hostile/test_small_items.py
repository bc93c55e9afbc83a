"""Smaller hostile inputs: LIKE wildcards in a search, a bad --limit, an unknown agency, UTF-8 in an
837I. Each on both databases, with its message and exit status."""

from __future__ import annotations

import sqlalchemy as sa

from kb.sample_agency import AgencyProfile, generate_sample, synthetic_npi
from loaders.x12_837i import write_837i
from tests.conftest import FIXTURES
from tests.hostile.conftest import one_line_error
from tests.test_cli import row_counts

SAMPLE = FIXTURES / "hcpcs" / "sample_anweb.txt"


def test_search_reads_percent_and_underscore_as_themselves(hhkb, tmp_path):
    path = tmp_path / "sample.txt"
    path.write_bytes(SAMPLE.read_bytes().replace(b"performed by a qualified", b"perform 100% a_qualified"))
    hhkb("load", "--effective", "2019-07-01", str(path))
    every_code = hhkb("search", "e").stdout
    assert all(code in every_code for code in ("G0151", "G0154", "G8891"))
    percent = hhkb("search", "%").stdout
    assert "G0151" in percent and "G0154" not in percent and "G8891" not in percent
    underscore = hhkb("search", "a_q").stdout
    assert "G0151" in underscore and "G0154" not in underscore
    assert "no code matches" in hhkb("search", "_____").stdout
    assert "no code matches" in hhkb("search", "%%").stdout


def test_search_limit_must_be_positive(hhkb):
    result = hhkb("search", "x", "--limit", "-1", status=2)
    assert "Invalid value for '--limit': -1 is not in the range x>=1." in result.stderr
    assert "Traceback" not in result.output


def test_check_of_an_agency_with_no_claims(hhkb, tmp_path):
    before = row_counts(hhkb.url)
    result = hhkb("check", "--agency", "9999999999", "--out", str(tmp_path / "out"), status=2)
    assert one_line_error(result) == "error: agency 9999999999 has no stored claims (hhkb claims load FILE stores them)"
    assert not (tmp_path / "out").exists()
    assert row_counts(hhkb.url) == before


def test_utf8_in_an_837i_is_stored_as_its_text(hhkb, tmp_path):
    profile = AgencyProfile(agency_id=synthetic_npi(8), state="OH", cbsa="17140", fips_county="39061", periods=2)
    sample = generate_sample(profile, year=2023, seed=5, lupa_thresholds={})
    path = tmp_path / "agency.837i"
    with open(path, "w", encoding="ascii", newline="") as stream:
        write_837i(sample.claims, stream, member_ids=sample.member_ids)
    first = sample.claims[0].claim_id
    accented = "RÉSUMÉ-" + first[-4:]
    path.write_bytes(path.read_bytes().replace(f"CLM*{first}*".encode(), f"CLM*{accented}*".encode("utf-8"), 1))
    hhkb("claims", "load", str(path))
    engine = sa.create_engine(hhkb.url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        stored = set(connection.execute(sa.text("SELECT claim_id FROM claim")).scalars())
    engine.dispose()
    assert accented in stored and first not in stored and len(stored) == len(sample.claims)
