"""Reports are written to a temporary file beside their name and renamed: a failure while writing
(a full disk) leaves the previous report whole and no temporary file behind."""

from __future__ import annotations

import os

import pytest

from reports import output
from reports.output import write_atomically, write_reports


def test_a_report_replaces_the_old_one_whole(tmp_path):
    written = write_reports(tmp_path / "out", "findings", [("md", lambda: "# new\n"), ("csv", lambda: "a,b\n")])
    assert [path.name for path in written] == ["findings.md", "findings.csv"]
    assert (tmp_path / "out" / "findings.md").read_text() == "# new\n"
    assert oct((tmp_path / "out" / "findings.md").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["findings.csv", "findings.md"]


def test_a_full_disk_leaves_the_old_report_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "impact.md"
    path.write_text("# the old report, whole\n")

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomically(path, "# a new report " + "x" * 100_000)
    assert path.read_text() == "# the old report, whole\n"
    assert os.listdir(tmp_path) == ["impact.md"]
