"""The live view `make run` shows while the synthetic practice runs (a terminal is needed).

It runs in the `revisit dev` process itself, beside the supervisor: every half second the
supervisor is polled (a dead service is still restarted, a dead database still stops
everything), and about once a second the dashboard is redrawn from the services' own APIs
(funnel per segment, open escalations), the sandbox's newest messages and the shared clock.
Ctrl-C leaves it with KeyboardInterrupt, like the plain log view.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from revisit.stack import DEMO_CLINIC
from revisit.supervisor import Supervisor
from shared.clock import current_time
from simulator.runner import STATUS_FILE

REFRESH_S = 1.0
POLL_S = 0.25


def speed_label(hours_per_second: float) -> str:
    seconds_per_day = 24 / hours_per_second
    return f"up to 1 simulated day every {seconds_per_day:g} s"


def activity(status_path: Path) -> str:
    """One line on what the simulated practice is doing, from the simulator's status file."""
    try:
        status = json.loads(status_path.read_text())
    except (OSError, ValueError):
        return "the simulated practice is starting"
    if status.get("loading_history"):
        sent, total = status.get("history_sent", 0), status.get("history_total", 0)
        if total and sent < total:
            return f"its EHR sends two years of history: {sent:,} of {total:,} records"
        return "Revisit is reading that history; the days start passing once it has"
    return (
        f"{status.get('messages_received', 0):,} messages to patients \u00b7 "
        f"{status.get('replies_sent', 0):,} replies \u00b7 "
        f"{status.get('bookings', 0):,} booked by text \u00b7 {status.get('stops', 0):,} STOP "
        f"\u00b7 staff closed {status.get('cases_closed', 0):,} cases"
    )


async def _sim_now(engine: AsyncEngine) -> datetime | None:
    try:
        return (await current_time(engine))[0]
    except Exception:  # a moment without the database shows no time, not a crash
        return None


class _Feed:
    """The newest sandbox messages of the demo practice, read from a cursor."""

    def __init__(self, messenger: str, size: int = 8) -> None:
        self.url = f"{messenger}/sandbox/feed"
        self.cursor = 0
        self.lines: deque[Any] = deque(maxlen=size)

    async def read(self, client: httpx.AsyncClient) -> None:
        from simulator.snapshot import conversation_line

        try:
            response = await client.get(
                self.url, params={"clinic_id": DEMO_CLINIC, "after": self.cursor, "limit": 1000}
            )
            page = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return
        if page:
            self.cursor = int(page["next"])
            self.lines.extend(conversation_line(m) for m in page["messages"])


async def _live(
    sup: Supervisor,
    base: Mapping[str, str],
    dsn: str,
    creds: Mapping[str, Any],
    speed: float,
    patients: int,
    data_dir: Path,
) -> str | None:
    from simulator.catalogue import default_clinic
    from simulator.live import render
    from simulator.snapshot import PracticeSummary, collect_snapshot

    token = str(creds["admin_token"])
    engine = create_async_engine(dsn, pool_size=1, hide_parameters=True)
    feed = _Feed(base["messenger"])
    practice = PracticeSummary(clinic_name=default_clinic().name, patients=patients)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0, headers=headers) as client:
            with Live(console=Console(), screen=True, auto_refresh=False) as live:
                next_draw = 0.0
                while True:
                    failure = sup.poll()
                    if failure:
                        return failure
                    if time.monotonic() >= next_draw:
                        next_draw = time.monotonic() + REFRESH_S
                        await feed.read(client)
                        snapshot = await collect_snapshot(
                            client,
                            urls=base,
                            token=token,
                            clinic_id=DEMO_CLINIC,
                            recent=list(feed.lines),
                            sim_now=await _sim_now(engine),
                            speed=speed_label(speed),
                            practice=practice,
                        )
                        now_doing = activity(data_dir / STATUS_FILE)
                        live.update(render(replace(snapshot, activity=now_doing)), refresh=True)
                    await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()


def run_live_view(
    sup: Supervisor,
    base: Mapping[str, str],
    dsn: str,
    creds: Mapping[str, Any],
    speed: float,
    patients: int,
    data_dir: Path,
) -> str | None:
    """Until the stack fails (the reason) or Ctrl-C (KeyboardInterrupt)."""
    return asyncio.run(_live(sup, base, dsn, creds, speed, patients, data_dir))
