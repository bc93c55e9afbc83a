"""The README stays true: its two set-up commands, every command of the CLI, and the main job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from lxml import html

from kb.cli import main
from tests.conftest import CMS, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_opens_with_exactly_the_two_set_up_commands():
    first_block = re.search(r"```\w*\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_command_appears_in_the_readme():
    names = []
    for name, command in main.commands.items():
        names.append(name)
        names.extend(f"{name} {sub}" for sub in getattr(command, "commands", {}))
    missing = [name for name in names if f"hhkb {name}" not in README]
    assert missing == []


def test_the_main_job_writes_the_review_with_the_impact(tmp_path):
    environment = dict(os.environ, HHKB_DATABASE_URL=f"sqlite:///{tmp_path / 'hhkb.sqlite3'}",
                       HHKB=str(Path(sys.executable).with_name("hhkb")))
    environment.pop("HHKB_BENEFICIARY_KEY", None)
    result = subprocess.run([str(REPO / ".ci" / "demo"), str(CMS), str(tmp_path / "out")], cwd=REPO,
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    review = html.parse(str(out / "review-2024.html")).getroot()
    assert review.xpath("//a[@href='impact.html']") and review.xpath("//a[@href='findings.html']")
    assert review.xpath("//section[@id='documents']//td[text()='CMS-1780-F']")
    impact = html.parse(str(out / "impact.html")).getroot()
    assert "400" in impact.text_content()
    for name in ("review-2024.md", "review-2024.csv", "impact.csv", "findings.json"):
        assert (out / name).stat().st_size > 0
    # the README's figures, as the job prints them
    for line in ("CY2023 774,213.65  CY2024 777,032.65  difference +2,819.00 (before the outlier cap)",
                 "paid CY2023 740,778.44  CY2024 742,021.64  difference +1,243.20"):
        assert line in result.stdout and line in README
    # the next year's rules on the same claims, and the year before's review
    assert review.xpath("//a[@href='impact-2025/impact.html']") and review.xpath("//a[@href='review-2023.html']")
    following = json.loads((out / "impact-2025" / "impact.json").read_text())
    assert (following["from"]["label"], following["to"]["label"]) == ("CY2024", "CY2025")
    assert "CMS-1803-F" in following["to"]["citation"]
    assert (following["totals"]["claims"], following["totals"]["unpriced"]) == (400, 0)
    assert following["totals"]["before"] == json.loads((out / "impact.json").read_text())["totals"]["after"]
    earlier = json.loads((out / "review-2023.json").read_text())
    assert [(c["old_label"], c["new_label"]) for c in earlier["comparisons"]] == [
        ("HCPCS 2020 JUL", "HCPCS 2023 annual"), ("CY2022", "CY2023")]
    assert {c["key"] for c in earlier["changes"] if c["change_type"] == "added"} >= {"G0320", "G0321", "G0322"}
    # no beneficiary identifiers in what the job writes
    member_ids = set(re.findall(r"NM1\*IL\*1\*[^*]*\*[^*]*\*[^*]*\*[^*]*\*[^*]*\*MI\*([^~*]+)",
                                (out / "sample-agency-2023.837i").read_text()))
    assert member_ids
    for name in os.listdir(out):
        if name.endswith((".html", ".md", ".csv", ".json")):
            text = (out / name).read_text()
            assert not any(member in text for member in member_ids), name
