"""The claims commands: hhkb claims load/generate, hhkb price, hhkb impact (both databases)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.cli_claims import claims_generate, claims_group, claims_load, impact_command, price_command
from tests.conftest import HHPPS_DIR

TABLES = [str(HHPPS_DIR / f"{kind}-{year}.csv") for kind in ("hrg", "rev", "cbsa-wage-index") for year in (2023, 2024)]


@pytest.fixture
def hhkb(database_url, monkeypatch):
    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "test key")
    runner = CliRunner()

    def invoke(*arguments):
        return runner.invoke(main, ["--db", database_url, *arguments], catch_exceptions=False)

    assert invoke("load", *TABLES).exit_code == 0
    return invoke


def test_generate_load_price_and_impact(hhkb, tmp_path):
    claims_file = tmp_path / "agency.837i"
    generated = hhkb("claims", "generate", "--periods", "60", "--seed", "4", "--year", "2023", "--out", str(claims_file))
    assert generated.exit_code == 0 and "60 claims" in generated.stdout
    loaded = hhkb("claims", "load", str(claims_file))
    assert loaded.exit_code == 0 and "60 rows" in loaded.stdout
    again = hhkb("claims", "load", str(claims_file))
    assert "already loaded" in again.stdout

    out = tmp_path / "report"
    result = hhkb("impact", "--from", "2023", "--to", "2024", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "60 claims priced, 0 not priced" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["impact.csv", "impact.html", "impact.json", "impact.md"]
    with open(out / "impact.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    totals = json.loads((out / "impact.json").read_text())["totals"]
    assert Decimal(totals["difference"]) == sum(Decimal(row["difference"]) for row in rows)

    claim_id = rows[0]["claim_id"]
    priced = hhkb("price", claim_id, "--rules", "2024", "--json")
    assert priced.exit_code == 0, priced.stderr
    document = json.loads(priced.stdout)
    assert Decimal(document["total"]) == Decimal(rows[0]["after"])
    assert document["rules_on"] == "2024-01-01" and any(step["citation"] for step in document["trace"])
    text = hhkb("price", claim_id)
    assert "outlier cap:" in text.stdout and "total" in text.stdout


def test_csv_generation_loads_too(hhkb, tmp_path):
    claims_file = tmp_path / "agency.csv"
    assert hhkb("claims", "generate", "--periods", "5", "--year", "2024", "--out", str(claims_file),
                "--format", "csv").exit_code == 0
    assert "5 rows" in hhkb("claims", "load", str(claims_file)).stdout


def test_an_adjustment_with_its_claims_id_replaces_it(hhkb, tmp_path):
    claims_file = tmp_path / "agency.csv"
    assert hhkb("claims", "generate", "--periods", "5", "--year", "2023", "--out", str(claims_file),
                "--format", "csv").exit_code == 0
    with open(claims_file, newline="") as stream:
        rows = list(csv.DictReader(stream))
    claim_id = rows[0]["claim_id"]
    adjustment = tmp_path / "adjustment.csv"
    with open(adjustment, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "type_of_bill": "0327"} for row in rows if row["claim_id"] == claim_id)
    assert hhkb("claims", "load", str(claims_file), str(adjustment)).exit_code == 0

    both = hhkb("price", claim_id)
    assert both.exit_code == 1 and "--type-of-bill" in both.stderr and "type of bill 0327" in both.stderr
    original = hhkb("price", claim_id, "--type-of-bill", "0329")
    assert original.exit_code == 0
    assert f"note: this claim was replaced by adjustment {claim_id} (type of bill 0327)" in original.stdout
    replacing = hhkb("price", claim_id, "--type-of-bill", "0327", "--json")
    assert json.loads(replacing.stdout)["superseded"] is None
    result = hhkb("impact", "--from", "2023", "--to", "2024", "--out", str(tmp_path / "report"))
    assert "5 claims priced, 1 not priced" in result.stdout


def test_bad_input_is_one_line_and_a_nonzero_status(hhkb, tmp_path):
    not_claims = tmp_path / "letter.txt"
    not_claims.write_text("Dear biller,\n")
    result = hhkb("claims", "load", str(not_claims))
    assert result.exit_code == 2
    message = result.stderr.strip()  # the progress display may leave an empty line
    assert message.startswith(f"error: {not_claims}") and "neither an X12 837I" in message and "\n" not in message
    missing = hhkb("price", "NO-SUCH-CLAIM")
    assert missing.exit_code == 1 and "no stored claim has this id" in missing.stderr
    no_year = hhkb("impact", "--from", "2019", "--to", "2024", "--out", str(tmp_path / "x"))
    assert no_year.exit_code == 1 and no_year.stderr.strip().startswith("error:")


def test_every_command_has_an_example():
    for command in (claims_group, claims_load, claims_generate, price_command, impact_command):
        if command is claims_group:
            continue
        assert "Example: hhkb " in command.help, command.name
