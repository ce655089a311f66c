"""Steps held until their prerequisites arrive (``messenger.held_steps``), released or blocked.

A held step keeps the SendStep envelope it came in (the inbox has already taken it, so it is
never redelivered) and a durable timer at the end of its wait. Two things fire that timer:
the patient's PatientUpserted or ConsentChanged arriving (``wake`` moves it to now), or the
wait running out. Either way the step goes through ``plan_sends`` again: queued if what it
needed has arrived, held on if not and the wait is not over, else judged by the send-time
checks, which block it (``no_contact``, ``no_consent``) and say why to staff.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.context import Context as TraceContext
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain import prerequisites as pre
from services.messenger.domain.checks import ContactCard
from services.messenger.repository import EPOCH, SCHEMA
from shared.consumer import Delivery
from shared.events.envelope import parse_event
from shared.events.outreach import SendStep
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler
from shared.topics import COMMANDS

HELD_TIMER = "held_step"
STEPS_HELD = Counter(
    "revisit_messenger_held_steps_total",
    "Send steps that waited for their prerequisites, by what became of them",
    ["outcome"],  # held | released | blocked
)

Command = tuple[Delivery, SendStep]
StepKey = tuple[str, int]


@dataclass(frozen=True)
class Sorted:
    ready: list[Command]  # judge these now
    gave_up: dict[StepKey, pre.Awaiting]  # among them, those whose wait has run out


def _timer_key(sequence_id: str, step: int) -> str:
    return f"{sequence_id}:{step}"


async def _arrived(session: AsyncSession, patient_keys: Sequence[str]) -> dict[str, pre.Arrived]:
    if not patient_keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT patient_key, source_updated_at > :epoch AS demographics, "
                f"marketing_consent_at IS NOT NULL AS consent FROM {SCHEMA}.contacts "
                "WHERE patient_key = ANY(:pks)"
            ),
            {"pks": sorted(set(patient_keys)), "epoch": EPOCH},
        )
    ).all()
    return {r[0]: pre.Arrived(bool(r[1]), bool(r[2])) for r in rows}


async def _waiting(session: AsyncSession, keys: Iterable[StepKey]) -> dict[StepKey, datetime]:
    """Steps already waiting, with the end of their wait (fixed when first held)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT h.sequence_id, h.step, h.give_up_at FROM {SCHEMA}.held_steps h "
                "JOIN unnest(CAST(:s AS text[]), CAST(:n AS int[])) AS k(s, n) "
                "ON h.sequence_id = k.s AND h.step = k.n WHERE h.status = 'waiting'"
            ),
            {"s": [k[0] for k in keys], "n": [k[1] for k in keys]},
        )
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


async def sort_out(
    runtime: Runtime,
    session: AsyncSession,
    commands: Sequence[Command],
    cards: Mapping[str, ContactCard],
    cancelled: set[str],
    wait: timedelta,
    now: datetime,
) -> Sorted:
    """Hold the steps whose prerequisites have not arrived (and whose wait is not over)."""
    lookup = [
        d.envelope.patient_key
        for d, cmd in commands
        if pre.needs_lookup(cards.get(d.envelope.patient_key), cmd)
    ]
    arrived = await _arrived(session, lookup)
    live = [(d, cmd) for d, cmd in commands if cmd.sequence_id not in cancelled]
    waiting = await _waiting(session, [(c.sequence_id, c.step) for _, c in commands])
    ready: list[Command] = []
    gave_up: dict[StepKey, pre.Awaiting] = {}
    holds: dict[StepKey, tuple[Delivery, SendStep, pre.Awaiting, datetime]] = {}
    for d, cmd in live:
        key = (cmd.sequence_id, cmd.step)
        patient = d.envelope.patient_key
        what = pre.awaiting(cards.get(patient), arrived.get(patient), cmd)
        if what is None:
            ready.append((d, cmd))
            continue
        until = waiting.get(key) or pre.give_up_at(now, wait, cmd.expires_at)
        if now < until:
            holds[key] = (d, cmd, what, until)
            continue
        ready.append((d, cmd))
        if key in waiting:
            gave_up[key] = what
    # Judged now (ready or cancelled) and no longer waiting: their rows go, unless blocked
    # below after a wait (``settle`` keeps those for staff).
    done = [k for k in waiting if k not in holds and k not in gave_up]
    await _drop(session, done)
    await _hold(runtime, session, list(holds.values()), now)
    if holds:
        STEPS_HELD.labels("held").inc(len([k for k in holds if k not in waiting]))
    released = len([k for k in done if k not in gave_up])
    if released:
        STEPS_HELD.labels("released").inc(released)
    return Sorted(ready, gave_up)


async def _hold(
    runtime: Runtime,
    session: AsyncSession,
    holds: Sequence[tuple[Delivery, SendStep, pre.Awaiting, datetime]],
    now: datetime,
) -> None:
    if not holds:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.held_steps (sequence_id, step, clinic_id, patient_key, "
            "waiting_for, command, trace_headers, held_at, give_up_at, status) "
            "VALUES (:s, :n, :c, :pk, :w, :cmd, CAST(:th AS jsonb), :now, :until, 'waiting') "
            "ON CONFLICT (sequence_id, step) DO UPDATE SET waiting_for = EXCLUDED.waiting_for, "
            "command = EXCLUDED.command, trace_headers = EXCLUDED.trace_headers, "
            "status = 'waiting', reason = NULL, why = NULL, settled_at = NULL"
        ),
        [
            {
                "s": cmd.sequence_id,
                "n": cmd.step,
                "c": d.envelope.clinic_id,
                "pk": d.envelope.patient_key,
                "w": what.value,
                "cmd": d.envelope.to_bytes().decode(),
                "th": json.dumps(d.trace_headers),
                "now": now,
                "until": until,
            }
            for d, cmd, what, until in holds
        ],
    )
    for d, cmd, _, until in holds:
        await runtime.timers.schedule(
            session,
            HELD_TIMER,
            _timer_key(cmd.sequence_id, cmd.step),
            until,
            patient_key=d.envelope.patient_key,
        )


async def _drop(session: AsyncSession, keys: Sequence[StepKey]) -> None:
    if not keys:
        return
    await session.execute(
        text(
            f"DELETE FROM {SCHEMA}.held_steps h USING unnest(CAST(:s AS text[]), "
            "CAST(:n AS int[])) AS k(s, n) WHERE h.sequence_id = k.s AND h.step = k.n"
        ),
        {"s": [k[0] for k in keys], "n": [k[1] for k in keys]},
    )


async def settle(
    session: AsyncSession,
    gave_up: Mapping[StepKey, pre.Awaiting],
    blocked: Mapping[StepKey, str],
    wait: timedelta,
    now: datetime,
) -> None:
    """Steps whose wait ran out: blocked ones stay listed for staff with the reason and why;
    any that went after all (the checks found a way) are dropped."""
    if not gave_up:
        return
    rows = [
        {
            "s": key[0],
            "n": key[1],
            "r": blocked[key],
            "why": pre.why(what, wait)
            if blocked[key] == pre.BLOCK_REASONS[what].value
            else f"{blocked[key]} while waiting: {pre.why(what, wait)}",
            "now": now,
        }
        for key, what in gave_up.items()
        if key in blocked
    ]
    if rows:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.held_steps SET status = 'blocked', reason = :r, why = :why, "
                "settled_at = :now WHERE sequence_id = :s AND step = :n"
            ),
            rows,
        )
        STEPS_HELD.labels("blocked").inc(len(rows))
    await _drop(session, [k for k in gave_up if k not in blocked])


async def wake(runtime: Runtime, session: AsyncSession, patient_keys: Iterable[str]) -> None:
    """Something these patients' steps may wait for has arrived: look at them now."""
    keys = sorted(set(patient_keys))
    if not keys:
        return
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.timers t SET due_at = :now FROM {SCHEMA}.held_steps h "
            "WHERE h.patient_key = ANY(:pks) AND h.status = 'waiting' AND t.kind = :kind "
            "AND t.timer_key = h.sequence_id || ':' || h.step::text AND t.due_at > :now"
        ),
        {"pks": keys, "now": runtime.clock.now(), "kind": HELD_TIMER},
    )


Plan = Callable[[AsyncSession, Sequence[Delivery]], Awaitable[None]]


def timer_handler(plan: Plan) -> TimerHandler:
    """Held steps whose timer fired go through ``plan`` (``sending.plan_sends``) again."""

    async def fire(session: AsyncSession, timers: Sequence[Timer]) -> None:
        keys = [(sid, int(step)) for sid, _, step in (t.key.rpartition(":") for t in timers)]
        rows = (
            await session.execute(
                text(
                    f"SELECT h.command, h.trace_headers FROM {SCHEMA}.held_steps h "
                    "JOIN unnest(CAST(:s AS text[]), CAST(:n AS int[])) AS k(s, n) "
                    "ON h.sequence_id = k.s AND h.step = k.n WHERE h.status = 'waiting'"
                ),
                {"s": [k[0] for k in keys], "n": [k[1] for k in keys]},
            )
        ).all()
        deliveries = [_delivery(r[0], r[1]) for r in rows]
        if deliveries:
            await plan(session, deliveries)

    return fire


def _delivery(command: str, headers: Any) -> Delivery:
    envelope = parse_event(command.encode())
    trace = {str(k): str(v) for k, v in (headers or {}).items()}
    return Delivery(envelope, COMMANDS.name, -1, -1, TraceContext(), trace)


async def listing(
    session: AsyncSession, clinic_id: str | None, status: str, limit: int
) -> list[dict[str, Any]]:
    """Held steps for staff: patient key, step, what it waits for, until when, and why blocked."""
    where = "status = :status" + (" AND clinic_id = :c" if clinic_id else "")
    rows = (
        await session.execute(
            text(
                "SELECT clinic_id, patient_key, sequence_id, step, waiting_for, held_at, "
                f"give_up_at, status, reason, why, settled_at FROM {SCHEMA}.held_steps "
                f"WHERE {where} ORDER BY held_at, sequence_id, step LIMIT :limit"
            ),
            {"status": status, "c": clinic_id, "limit": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
