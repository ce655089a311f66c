"""`revisit chaos --short` inside `make test`: two faults (kill -9 of the messenger mid-batch, a
PostgreSQL restart) over a few simulated days, with duplicated and reordered EHR input,
replayed replies and deliberately bad messages; every invariant holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

INVARIANTS = {
    "ehr_reached_every_consumer_once",
    "no_step_sent_twice",
    "no_send_after_opt_out",
    "no_send_outside_allowed_hours",
    "caps_held",
    "every_red_flag_paged",
    "no_unexpected_dead_letter",
    "every_bad_input_dead_lettered",
    "nothing_left_in_flight",
}


def test_a_short_fault_run_keeps_every_invariant(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REVISIT_JWT_SECRET"}
    }
    run = subprocess.run(
        [sys.executable, "-m", "revisit", "chaos", "--short", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    lines = run.stdout.splitlines()
    found = {
        line.split(":", 1)[0].removeprefix("chaos_"): line
        for line in lines
        if line.startswith("chaos_") and "violations (" in line
    }
    assert set(found) == INVARIANTS, run.stdout + run.stderr[-3000:]
    for line in found.values():
        assert ": 0 violations (" in line, f"{line}\n" + "\n".join(lines)
    assert int(found["ehr_reached_every_consumer_once"].split("(")[1].split()[0]) > 100
    faults = [line for line in lines if line.startswith("chaos_FAULTS:")]
    assert any("kill -9 messenger x1" in f for f in faults), faults
    assert any("PostgreSQL restart x1" in f for f in faults), faults
    assert run.returncode == 0, run.stderr[-3000:]
