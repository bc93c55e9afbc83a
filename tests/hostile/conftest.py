"""What the hostile-input tests share: the command line on a fresh database of each backend."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kb.cli import main


@pytest.fixture
def hhkb(database_url, monkeypatch):
    """``hhkb(*arguments, status=0)`` runs the command line on this test's database and checks the
    exit status; ``hhkb.url`` is the database, ``hhkb.at(url, ...)`` runs on another URL of it."""
    monkeypatch.setenv("HHKB_BENEFICIARY_KEY", "test key")

    def invoke(*arguments, status=0):
        result = CliRunner().invoke(main, ["--db", database_url, *arguments], catch_exceptions=False)
        assert result.exit_code == status, result.output
        return result

    def invoke_at(url, *arguments, status=0):
        result = CliRunner().invoke(main, ["--db", url, *arguments], catch_exceptions=False)
        assert result.exit_code == status, result.output
        return result

    invoke.url = database_url
    invoke.at = invoke_at
    return invoke


def one_line_error(result) -> str:
    """The error line a failed command printed (the progress display may leave blank lines)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
