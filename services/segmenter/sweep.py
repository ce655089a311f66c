"""The time-based sweep: set-based SQL that moves stored memberships through time.

The rules never depend on "now" (see ``domain/findings.py``), so everything time alone can change
is already stored on each membership: when it surfaces (``surface_at``), when its window closes
(``expires_at``), its rank, and the PatientBecameEligible payload to emit. The sweep applies, for
every patient whose ``next_transition_at`` has passed, exactly what ``domain.reconcile`` would:

1. claim the due patients (``FOR UPDATE SKIP LOCKED``: a patient a handler is working on is
   skipped, and that handler evaluates it at its own "now");
2. plan, in one read: each live membership is closed (its window is over), still upcoming, or
   due; each patient's first due one in (rank, surface_at, need_id) order is the primary unless
   service recovery holds the patient, the others are held with the reason;
3. write PatientLeftSegment (window closed, superseded, service recovery) and then
   PatientBecameEligible (under the membership's next eligibility id) into the outbox;
4. apply the plan with one update per changed membership (HOT: no index covers what changes).
   Rows are found by ``ctid``: the claimed patients' rows are locked by this transaction and
   every writer of a patient's memberships locks the patient first, so no other transaction
   moves them;
5. store each patient's next transition and set the durable timers for it.

Events are built in SQL straight into the outbox, in the same transaction. Tests check that the
sweep and the Python rules agree (tests/segmenter/test_segmenter_sweep.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.segmenter.domain.memberships import HOLD_RECOVERY
from services.segmenter.repository import SCHEMA, schedule_sweeps
from shared.clock import Clock
from shared.events.envelope import payload_class
from shared.outbox import outbox_channel
from shared.topics import ELIGIBILITY

S = SCHEMA
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    patients: int
    left: int
    eligible: int
    more: bool  # the chunk was full: run again

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(
            self.patients + other.patients,
            self.left + other.left,
            self.eligible + other.eligible,
            other.more,
        )


def _envelope(event_type: str, payload_sql: str) -> str:
    """SQL for the outbox body of one event: the same JSON ``Envelope.to_bytes`` produces (at
    the event's current version). It continues the story of the EHR event that made the need
    (``m.origin``): same correlation id, caused by that event."""
    version = payload_class(event_type).event_version
    return (
        "convert_to(json_build_object("
        "'event_id', x.event_id, 'type', '" + event_type + f"', 'version', {version}, "
        "'occurred_at', CAST(:now AS timestamptz), 'recorded_at', now(), "
        "'clinic_id', x.clinic_id, 'patient_key', x.patient_key, "
        "'correlation_id', coalesce(m.origin->>'correlation_id', CAST(x.event_id AS text)), "
        "'causation_id', m.origin->>'causation_id', "
        "'payload', " + payload_sql + ")::text, 'UTF8')"
    )


# Trace context of the causing event, so the trace spans ingest to messenger across the wait.
_HEADERS = "coalesce(m.origin->'headers', '{}'::jsonb)"


_INSERT_OUTBOX = (
    f"INSERT INTO {S}.outbox (event_id, topic, message_key, event_type, body, headers) "
)

_TEMP = [
    # The plan's window sort and hash joins fit in memory instead of spilling to disk.
    "SET LOCAL work_mem = '64MB'",
    "CREATE TEMP TABLE IF NOT EXISTS sweep_batch (patient_key text PRIMARY KEY, "
    "clinic_id text NOT NULL, recovery_hold boolean NOT NULL, row_id tid NOT NULL) "
    "ON COMMIT DELETE ROWS",
    "TRUNCATE sweep_batch",
    "DROP TABLE IF EXISTS sweep_plan",
]

_CLAIM = (
    "INSERT INTO sweep_batch (patient_key, clinic_id, recovery_hold, row_id) "
    f"SELECT patient_key, clinic_id, recovery_hold, ctid FROM {S}.patients "
    "WHERE next_transition_at <= :now {clinic} AND clinic_id <> ALL(ARRAY("
    f"SELECT clinic_id FROM {S}.clinic_params "
    "WHERE overrides->'general'->>'hold_outreach' = 'true')) "
    "ORDER BY next_transition_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)  # a clinic whose history is loading is left alone: its re-evaluation at the end decides

# Every live membership of the claimed patients, with what time makes of it: closed (window
# over), still upcoming, or due; among a patient's due ones the first in (rank, surface_at,
# need_id) order is the primary (unless service recovery holds the patient), the rest are held.
_PLAN = (
    "CREATE TEMP TABLE sweep_plan ON COMMIT DROP AS "
    "WITH live AS (SELECT m.need_id, m.patient_key, m.clinic_id, m.segment, m.kind, "
    "m.service_line, m.source_kind, m.source_id, m.status AS old_status, "
    "m.hold_reason AS old_hold, m.eligibility_id AS old_eligibility_id, m.emissions, "
    "m.rank, m.surface_at, m.expires_at, b.recovery_hold, m.ctid AS row_id, "
    "CASE WHEN m.expires_at <= :now THEN 'closed' "
    "WHEN m.status = 'upcoming' AND m.surface_at > :now THEN 'upcoming' ELSE 'due' END AS phase "
    f"FROM {S}.memberships m JOIN sweep_batch b ON b.patient_key = m.patient_key "
    "WHERE m.status IN ('upcoming', 'held', 'open')), "
    "ranked AS (SELECT live.*, row_number() OVER w AS pos, first_value(segment) OVER w "
    "AS best_segment, first_value(source_kind) OVER w AS best_source_kind, "
    "first_value(source_id) OVER w AS best_source_id FROM live WINDOW w AS (PARTITION BY "
    "patient_key ORDER BY phase <> 'due', rank, surface_at, need_id)) "
    "SELECT ranked.*, CASE WHEN phase <> 'due' THEN phase WHEN recovery_hold THEN 'held' "
    "WHEN pos = 1 THEN 'open' ELSE 'held' END AS new_status, "
    "CASE WHEN phase <> 'due' OR (pos = 1 AND NOT recovery_hold) THEN NULL "
    "WHEN recovery_hold THEN CAST(:recovery AS text) "
    "ELSE 'held while ' || best_segment || ' is the primary segment' END AS new_hold, "
    "CASE WHEN emissions = 0 THEN need_id ELSE need_id || '-' || (emissions + 1) END "
    "AS next_eligibility_id, gen_random_uuid() AS event_id FROM ranked"
)

_APPLY = (
    f"UPDATE {S}.memberships m SET status = p.new_status, hold_reason = p.new_hold, "
    "closed_reason = CASE WHEN p.new_status = 'closed' THEN 'window_closed' "
    "ELSE m.closed_reason END, "
    "closed_at = CASE WHEN p.new_status = 'closed' THEN CAST(:now AS timestamptz) "
    "ELSE m.closed_at END, "
    "emissions = m.emissions + CASE WHEN p.opening THEN 1 ELSE 0 END, "
    "eligibility_id = CASE WHEN p.opening THEN p.next_eligibility_id ELSE m.eligibility_id END, "
    "opened_at = CASE WHEN p.opening THEN coalesce(m.opened_at, CAST(:now AS timestamptz)) "
    "ELSE m.opened_at END, updated_at = now() "
    "FROM (SELECT *, new_status = 'open' AND old_status <> 'open' AS opening FROM sweep_plan) p "
    "WHERE m.ctid = p.row_id AND m.need_id = p.need_id AND (p.new_status <> p.old_status "
    "OR p.new_hold IS DISTINCT FROM p.old_hold)"
)

# Leaving first (the window closed, or another need took over, or service recovery holds the
# patient), then becoming eligible: the relay publishes in this order.
_LEFT = (
    _INSERT_OUTBOX
    + f"SELECT x.event_id, '{ELIGIBILITY.name}', x.patient_key, 'PatientLeftSegment', "
    + _envelope(
        "PatientLeftSegment",
        "json_build_object('eligibility_id', x.old_eligibility_id, 'segment', x.segment, "
        "'kind', x.kind, 'service_line', x.service_line, 'reason', CASE "
        "WHEN x.new_status = 'closed' THEN 'window_closed' WHEN x.recovery_hold "
        "THEN 'service_recovery' ELSE 'superseded' END, 'source_record', CASE "
        "WHEN x.new_status = 'held' AND NOT x.recovery_hold THEN json_build_object("
        "'kind', x.best_source_kind, 'id', x.best_source_id) END)",
    )
    + f", {_HEADERS} FROM sweep_plan x JOIN {S}.memberships m ON m.ctid = x.row_id "
    "WHERE x.old_status = 'open' AND x.new_status <> 'open'"
)

_ELIGIBLE = (
    _INSERT_OUTBOX
    + f"SELECT x.event_id, '{ELIGIBILITY.name}', x.patient_key, 'PatientBecameEligible', "
    + _envelope(
        "PatientBecameEligible",
        "m.fields || jsonb_build_object('eligibility_id', x.next_eligibility_id)",
    )
    + f", {_HEADERS} FROM sweep_plan x JOIN {S}.memberships m ON m.ctid = x.row_id "
    "WHERE x.new_status = 'open' AND x.old_status <> 'open'"
)

_NEXT = (
    f"UPDATE {S}.patients p SET next_transition_at = n.next, rev = gen_random_uuid(), "
    "updated_at = now() FROM (SELECT b.patient_key, min(CASE WHEN x.new_status = "
    "'upcoming' THEN least(x.surface_at, x.expires_at) WHEN x.new_status <> 'closed' "
    "THEN x.expires_at END) AS next FROM sweep_batch b LEFT JOIN sweep_plan x "
    "ON x.patient_key = b.patient_key GROUP BY b.patient_key) n "
    "WHERE p.ctid = ANY(ARRAY(SELECT row_id FROM sweep_batch)) "
    "AND p.patient_key = n.patient_key "
    "RETURNING p.next_transition_at"
)


async def _count(session: AsyncSession, sql: str, **params: object) -> int:
    result: CursorResult[Any] = await session.execute(text(sql), params)  # type: ignore[assignment]
    return int(result.rowcount)


async def sweep_chunk(
    session: AsyncSession, now: datetime, limit: int = 20_000, *, clinic_id: str | None = None
) -> SweepResult:
    """Move up to ``limit`` due patients (of one clinic, if given) through time, in the
    caller's transaction."""
    for ddl in _TEMP:
        await session.execute(text(ddl))
    if clinic_id is None:
        claimed = await _count(session, _CLAIM.format(clinic=""), now=now, limit=limit)
    else:
        claim = _CLAIM.format(clinic="AND clinic_id = :clinic")
        claimed = await _count(session, claim, now=now, limit=limit, clinic=clinic_id)
    if not claimed:
        return SweepResult(0, 0, 0, more=False)
    await session.execute(text("ANALYZE sweep_batch"))
    await session.execute(text(_PLAN), {"now": now, "recovery": HOLD_RECOVERY})
    # The outbox first: it reads the payloads by ctid, which the update below moves.
    left = await _count(session, _LEFT, now=now)
    eligible = await _count(session, _ELIGIBLE, now=now)
    await session.execute(text(_APPLY), {"now": now})
    await schedule_sweeps(session, (await session.execute(text(_NEXT))).scalars().all())
    if left or eligible:
        await session.execute(text(f"SELECT pg_notify('{outbox_channel(SCHEMA)}', '')"))
    return SweepResult(claimed, left, eligible, more=claimed >= limit)


class Sweeper:
    """Runs the sweep in the background with ``workers`` concurrent transactions.

    The durable timers only wake it: a sweep may take many chunks, and holding the timer
    poller's transaction (and its claimed timers) for all of them would gain nothing. If a
    sweep fails, nothing is lost: the patients' ``next_transition_at`` is still due, and the
    periodic timer wakes the sweeper again.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        chunk: int,
        workers: int,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.chunk = chunk
        self.workers = workers
        self._wake = asyncio.Event()
        self.last: SweepResult | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self, now: datetime | None = None) -> SweepResult:
        """Sweep everything due at ``now`` (default: the clock's now); returns the totals."""
        at = now or self.clock.now()

        async def worker() -> SweepResult:
            total = SweepResult(0, 0, 0, more=False)
            while True:
                async with self.sessions() as session, session.begin():
                    result = await sweep_chunk(session, at, self.chunk)
                total += result
                if not result.more:
                    return total

        results = await asyncio.gather(*(worker() for _ in range(self.workers)))
        done = SweepResult(0, 0, 0, more=False)
        for result in results:
            done += result
        self.last = done
        return done

    async def loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if stop.is_set():
                return
            self._wake.clear()
            try:
                await self.run()
            except Exception as exc:  # the database is away, say: the next wake retries
                log.warning("sweep failed; will retry", extra={"error": type(exc).__name__})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
