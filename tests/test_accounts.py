"""Accounts, roles, grants, the append-only audit log and sign-offs, on SQLite and PostgreSQL; the
``hhkb users`` commands."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from kb.answers import audit_csv
from kb import accounts, audit, database
from kb.database import transaction
from tests.web_support import cli

PASSWORD = "correct-horse-battery"


def test_an_account_keeps_only_an_argon2id_hash_and_logs_in_with_its_password(engine):
    with transaction(engine) as session:
        added = accounts.add_account(session, "alice", PASSWORD, role="coder")
    assert added.role == "coder" and added.agencies == ()
    with Session(engine) as session:
        stored = session.execute(sa.text("SELECT password_hash FROM web_account")).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert accounts.authenticate(session, "alice", PASSWORD).username == "alice"
        assert accounts.authenticate(session, "alice", PASSWORD + "x") is None
        assert accounts.authenticate(session, "nobody", PASSWORD) is None


def test_roles_are_ordered_and_grants_name_the_agencies_seen(engine):
    with transaction(engine) as session:
        accounts.add_account(session, "carol", PASSWORD, role="compliance")
        accounts.grant(session, "carol", "9000000018")
        accounts.grant(session, "carol", "9000000018")  # twice is once
        carol = accounts.grant(session, "carol", "9000000026")
    assert carol.agencies == ("9000000018", "9000000026")
    assert carol.may("viewer") and carol.may("coder") and carol.may("compliance") and not carol.may("admin")
    assert carol.sees("9000000018") and not carol.sees("9000000034")
    with transaction(engine) as session:
        carol = accounts.revoke(session, "carol", "9000000026")
        assert accounts.set_role(session, "carol", "viewer").role == "viewer"
    assert carol.agencies == ("9000000018",)


def test_a_disabled_account_cannot_log_in(engine):
    with transaction(engine) as session:
        accounts.add_account(session, "dave", PASSWORD)
        accounts.set_disabled(session, "dave")
    with Session(engine) as session:
        assert accounts.authenticate(session, "dave", PASSWORD) is None


@pytest.mark.parametrize("username, password, role, message", [
    ("eve", "short", "viewer", "at least 12 characters"),
    ("has space", PASSWORD, "viewer", "user name"),
    ("eve", PASSWORD, "owner", "unknown role 'owner'"),
])
def test_bad_accounts_are_refused_in_words(engine, username, password, role, message):
    with pytest.raises(accounts.AccountError, match=message), transaction(engine) as session:
        accounts.add_account(session, username, password, role=role)
    with Session(engine) as session:
        assert accounts.list_accounts(session) == []


def test_the_audit_log_and_sign_offs_cannot_be_changed(engine):
    with transaction(engine) as session:
        audit.record(session, "alice", "login", address="127.0.0.1")
        signed = audit.sign_off(session, agency_id="9000000018", year=2024, username="alice", role="compliance",
                                document={"year": 2024, "changes": [1, 2]})
    assert signed.content_sha256 == audit.sha256_text(signed.content)
    assert json.loads(signed.content) == {"year": 2024, "changes": [1, 2]}
    for statement in ("UPDATE audit_event SET username = 'mallory'", "DELETE FROM audit_event",
                      "UPDATE review_signoff SET content_sha256 = 'x'", "DELETE FROM review_signoff"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    with Session(engine) as session:
        assert [(e.username, e.action) for e in audit.events(session)] == [("alice", "login")]
        assert [s.content_sha256 for s in audit.sign_offs(session, agency_id="9000000018")] == [signed.content_sha256]
        csv_text = audit_csv(session)
    assert csv_text.splitlines()[0] == ",".join(audit.CSV_COLUMNS) and ",alice,login,,127.0.0.1," in csv_text


def test_users_commands(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("HHKB_PASSWORD", PASSWORD)
    assert "added alice: viewer" in cli(database_url, "users", "add", "alice").output
    assert "alice: coder" in cli(database_url, "users", "set-role", "alice", "coder").output
    assert "agencies 9000000018" in cli(database_url, "users", "grant", "alice", "9000000018").output
    assert "(disabled)" in cli(database_url, "users", "disable", "alice").output
    listing = cli(database_url, "users", "list").output
    assert "alice" in listing and "coder" in listing and PASSWORD not in listing
    refused = cli(database_url, "users", "add", "alice", ok=False)
    assert refused.exit_code == 2 and "already exists" in refused.output
    cli(database_url, "audit", "--out", str(tmp_path / "audit.csv"))
    assert (tmp_path / "audit.csv").read_text().startswith("id,at,username,action")


def test_signed_review_writes_the_copy_exactly_as_signed(database_url, tmp_path):
    engine = database.open_database(database_url)
    with transaction(engine) as session:
        signed = audit.sign_off(session, agency_id="9000000015", year=2024, username="alice", role="compliance",
                                document={"year": 2024})
    engine.dispose()
    output = cli(database_url, "signed-review", str(signed.id), "--out", str(tmp_path / "signed.json")).output
    assert signed.content_sha256 in output
    assert audit.sha256_text((tmp_path / "signed.json").read_text()) == signed.content_sha256
    assert cli(database_url, "signed-review", "99", "--out", str(tmp_path / "x.json"), ok=False).exit_code == 1
