"""The beneficiary key's loss or replacement is refused, never silently worked around (issue: a
lost key file made a new key, and the same claims loaded again got other hashes). The database
keeps an HMAC fingerprint of the key, never the key."""

from __future__ import annotations

import sqlalchemy as sa

from kb.claims import key_fingerprint
from tests.conftest import FIXTURES
from tests.hostile.conftest import one_line_error
from tests.test_cli import row_counts

CLAIMS = FIXTURES / "claims" / "two-claims.csv"


def _fingerprints(url: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT fingerprint FROM beneficiary_key_fingerprint")).scalars().all()
    engine.dispose()
    return rows


def test_another_key_is_refused_and_the_key_itself_is_not_stored(hhkb, tmp_path, monkeypatch):
    hhkb("claims", "load", str(CLAIMS))
    assert _fingerprints(hhkb.url) == [key_fingerprint(b"test key")]
    before = row_counts(hhkb.url)
    other = tmp_path / "more.csv"
    other.write_text(CLAIMS.read_text().replace(",P00000", ",Q00000"))
    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "another key")
    line = one_line_error(hhkb("claims", "load", str(other), status=2))
    assert line == (f"error: HHKB_BENEFICIARY_KEY: this beneficiary key (fingerprint {key_fingerprint(b'another key')[:16]}) "
                    f"is not the key this database's claims were hashed with (fingerprint "
                    f"{key_fingerprint(b'test key')[:16]}): use that key (see the README on its backup)")
    assert row_counts(hhkb.url) == before
    assert "test key" not in repr(_fingerprints(hhkb.url))


def test_a_lost_key_file_is_not_replaced(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kb.cli import main

    monkeypatch.delenv("HHKB_BENEFICIARY_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    key_file = tmp_path / "kb.sqlite3.beneficiary-key"
    CliRunner().invoke(main, ["--db", url, "releases"], catch_exceptions=False)
    assert not key_file.exists()  # reading makes no key
    first = CliRunner().invoke(main, ["--db", url, "claims", "load", str(CLAIMS)], catch_exceptions=False)
    assert first.exit_code == 0 and key_file.exists()
    key = key_file.read_bytes().strip()
    assert _fingerprints(url) == [key_fingerprint(key)]
    key_file.unlink()
    before = row_counts(url)
    other = tmp_path / "more.csv"
    other.write_text(CLAIMS.read_text().replace(",P00000", ",Q00000"))
    lost = CliRunner().invoke(main, ["--db", url, "claims", "load", str(other)], catch_exceptions=False)
    assert lost.exit_code == 2
    line = one_line_error(lost)
    assert line.startswith(f"error: {key_file}: the beneficiary key of this database is missing")
    assert "restore the key file from its backup" in line and key_fingerprint(key)[:16] in line
    assert not key_file.exists() and row_counts(url) == before
    key_file.write_bytes(key + b"\n")
    restored = CliRunner().invoke(main, ["--db", url, "claims", "load", str(other)], catch_exceptions=False)
    assert restored.exit_code == 0, restored.output
