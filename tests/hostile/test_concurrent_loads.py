"""Loads at once give what loads one after another give (issue: concurrent loads interleaved the
versions of a corrections zip with another load, and a duplicate load failed with a traceback).

Three ``hhkb load`` processes start together on a blank database (so they also race to create its
schema), with overlapping and different files: the 2018 corrections zip (four documents, V1-V4),
the 2018 and 2019 annual releases. Each round draws bounded start delays from its own seed; the
database must equal the one the same loads give run one after another, every process must exit 0,
and a process that waited says so in one line.
"""

from __future__ import annotations

import random
import time

import pytest

from kb import database
from tests.conftest import BACKENDS, HCPCS_DIR
from tests.hostile.loads import blank_database, run_load, start_load, tables

CORRECTIONS_2018 = HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip"
ANNUAL_2018 = HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip"
ANNUAL_2019 = HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip"

LOADS = [
    [CORRECTIONS_2018, ANNUAL_2019],
    [ANNUAL_2019, ANNUAL_2018],
    [CORRECTIONS_2018],
]
ROUNDS = (1, 2)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def sequential(request, tmp_path, backend) -> dict:
    url = blank_database(request, tmp_path, backend)
    for files in LOADS:
        run_load(url, files)
    return tables(url)


@pytest.mark.parametrize("seed", ROUNDS)
def test_loads_at_once_give_the_sequential_result(request, tmp_path, backend, sequential, seed):
    url = blank_database(request, tmp_path, backend)
    delays = random.Random(seed).sample([0.0, 0.3, 0.7, 1.2, 1.8], k=len(LOADS))
    started = time.monotonic()
    processes = []
    for delay, files in sorted(zip(delays, LOADS), key=lambda item: item[0]):
        time.sleep(max(0.0, delay - (time.monotonic() - started)))
        processes.append(start_load(url, files))
    results = [(process, *process.communicate(timeout=600)) for process in processes]
    for process, _stdout, stderr in results:
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        waited = [line for line in stderr.splitlines() if line.startswith("waiting: ")]
        assert len(waited) <= 1
        assert all("another load is writing to" in line for line in waited)
    assert tables(url) == sequential
    assert len(sequential["releases"]) == 6  # two annual releases and the four corrections documents


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_load_meeting_another_waits_or_says_so_in_one_line(request, tmp_path, backend):
    """While another writer holds the lock: ``--wait 0`` refuses at once, ``--wait 1`` says it waits
    then gives up, both with status 3 and the database unchanged; a load that waits long enough
    stores its file once the other has finished."""
    url = blank_database(request, tmp_path, backend)
    run_load(url, [ANNUAL_2018])
    before = tables(url)
    engine = database.open_database(url)
    try:
        with database.writing(engine):
            refused = start_load(url, [CORRECTIONS_2018], "--wait", "0")
            _stdout, stderr = refused.communicate(timeout=120)
            assert refused.returncode == 3, stderr
            [line] = _error_lines(stderr)
            assert line.startswith("error: another load is writing to ") and line.endswith(
                "did not finish within 0 s: try again later")

            gave_up = start_load(url, [CORRECTIONS_2018], "--wait", "1")
            _stdout, stderr = gave_up.communicate(timeout=120)
            assert gave_up.returncode == 3, stderr
            waiting, error = _error_lines(stderr)
            assert waiting.startswith("waiting: another load is writing to ") and waiting.endswith(
                "waiting up to 1 s for it to finish")
            assert error.startswith("error: another load is writing to ") and "within 1 s" in error
            assert tables(url) == before

            said = tmp_path / "patient.stderr"
            with said.open("w") as stream:
                patient = start_load(url, [CORRECTIONS_2018], "--wait", "120", stderr=stream)
            deadline = time.monotonic() + 60
            while patient.poll() is None and time.monotonic() < deadline and "waiting: " not in said.read_text():
                time.sleep(0.1)
    finally:
        engine.dispose()
    stdout, _ = patient.communicate(timeout=300)
    stderr = said.read_text()
    assert patient.returncode == 0, stderr
    assert stderr.startswith("waiting: another load is writing to ")
    assert len(tables(url)["releases"]) == 5 and stdout.count("2018 corrections V") == 4
