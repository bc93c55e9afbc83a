"""A load killed at any moment leaves the database as it was or with whole releases, and loading
again gives what an uninterrupted load gives (SIGKILL: nothing of hhkb runs after it).

The load stores the 2018 corrections zip (four documents) and the 2018 and 2019 annual releases in
one transaction; each kill comes after a delay drawn (bounded, from a fixed seed) across the
process's life, from start-up through parsing to storing.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.conftest import BACKENDS, HCPCS_DIR
from tests.hostile.loads import blank_database, run_load, start_load, tables

FILES = [HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip", HCPCS_DIR / "2018-HCPCS-Alpha-Numeric-Corrections.zip",
         HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip"]
KILLS = 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_load_leaves_the_prior_state_and_a_reload_completes_it(request, tmp_path, backend):
    reference_url = blank_database(request, tmp_path, backend)
    run_load(reference_url, [FILES[0]])
    prior = tables(reference_url)
    started = time.monotonic()
    run_load(reference_url, FILES)
    uninterrupted = tables(reference_url)
    lifetime = time.monotonic() - started

    url = blank_database(request, tmp_path, backend)
    run_load(url, [FILES[0]])
    draw = random.Random(15)
    for _ in range(KILLS):
        process = start_load(url, FILES)
        time.sleep(draw.uniform(0.2, lifetime))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        state = tables(url)
        assert state in (prior, uninterrupted), "a killed load left part of its releases"
        if state == uninterrupted:
            break
    run_load(url, FILES)
    assert tables(url) == uninterrupted
