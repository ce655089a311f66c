"""The dispatcher is one leader per database: when its lock's connection is gone (a database
restart, a killed backend) it steps down, is restarted by the loop supervisor, and leads again."""

from __future__ import annotations

from sqlalchemy import text

from services.messenger.dispatcher import LEADER_KEY
from tests.messenger.conftest import Messenger, envelope, send_step, wait_for

HOLDER = (
    "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objid = (hashtext(:k)::bigint & 4294967295)"
)


async def test_a_dispatcher_that_lost_its_lock_steps_down_and_leads_again(
    messenger: Messenger,
) -> None:
    loop = messenger.runtime.loops["dispatcher"]
    crashes = loop.crashes
    [holder] = [r["pid"] for r in await messenger.rows(HOLDER, k=LEADER_KEY)]
    async with messenger.runtime.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": holder})

    async def stepped_down() -> bool:
        return loop.crashes > crashes

    assert await wait_for(stepped_down, timeout=10)

    async def leads_again() -> bool:
        pids = [r["pid"] for r in await messenger.rows(HOLDER, k=LEADER_KEY)]
        return bool(pids) and pids != [holder] and loop.up

    assert await wait_for(leads_again, timeout=15)
    patient_key, _ = await messenger.new_patient()
    await messenger.handle("commands", envelope(send_step(), patient_key))
    assert len(await messenger.outbound(patient_key, 1)) == 1  # and it sends
