"""The pruning sweep and the jobs a service adds while it runs."""

from __future__ import annotations

from shared.config import RetentionSettings
from shared.retention import Retention


async def test_a_job_added_while_a_sweep_runs_waits_for_the_next_sweep() -> None:
    sweeps = Retention("messenger", RetentionSettings())

    async def late() -> int:
        return 2

    async def first() -> int:
        # the messenger adds its own job in on_start, while the first sweep may be running
        sweeps.add("message_bodies", late)
        return 1

    sweeps.add("inbox", first)
    assert await sweeps.sweep_once() == {"inbox": 1}
    assert await sweeps.sweep_once() == {"inbox": 1, "message_bodies": 2}
