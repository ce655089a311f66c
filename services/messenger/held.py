"""Steps held until their prerequisites arrive (``messenger.held_steps``), released or blocked.

A held step keeps the SendStep envelope it came in (the inbox has already taken it, so it is
never redelivered) and a durable timer at the end of its wait. Two things fire that timer:
the patient's PatientUpserted or ConsentChanged arriving (``wake`` moves it to now), or the
wait running out. Either way the step goes through ``plan_sends`` again: queued if what it
needed has arrived, held on if not and the wait is not over, else judged by the send-time
checks, which block it (``no_contact``, ``no_consent``) and say why to staff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.context import Context as TraceContext
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import held_store as store
from services.messenger import repository
from services.messenger.domain import prerequisites as pre
from services.messenger.domain.checks import ContactCard
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
StepKey = store.StepKey
listing = store.listing


@dataclass(frozen=True)
class Sorted:
    ready: list[Command]  # judge these now
    gave_up: dict[StepKey, pre.Awaiting]  # among them, those whose wait has run out
    cards: dict[str, ContactCard]  # the cards to judge them by (re-read for the held ones)


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
    cards = dict(cards)
    live = [(d, cmd) for d, cmd in commands if cmd.sequence_id not in cancelled]
    lookup = [
        d.envelope.patient_key
        for d, c in live
        if pre.needs_lookup(cards.get(d.envelope.patient_key), c)
    ]
    arrived = await store.arrived(session, lookup)

    def what(d: Delivery, cmd: SendStep) -> pre.Awaiting | None:
        patient = d.envelope.patient_key
        return pre.awaiting(cards.get(patient), arrived.get(patient), cmd)

    unready = {d.envelope.patient_key for d, cmd in live if what(d, cmd) is not None}
    if unready:
        # A PatientUpserted committing now would find no held row to wake, and this step would
        # wait out its whole time: taking the patients' locks (``wake`` takes them too) and
        # reading their cards again orders the two transactions, so one sees the other.
        await store.lock(session, unready)
        cards.update(await repository.contact_cards(session, unready))
        arrived.update(await store.arrived(session, unready))
    waiting = await store.waiting(session, [(c.sequence_id, c.step) for _, c in commands])
    ready: list[Command] = []
    gave_up: dict[StepKey, pre.Awaiting] = {}
    holds: dict[StepKey, store.Hold] = {}
    for d, cmd in live:
        key, missing = (cmd.sequence_id, cmd.step), what(d, cmd)
        if missing is None:
            ready.append((d, cmd))
            continue
        until = waiting.get(key) or pre.give_up_at(now, wait, cmd.expires_at)
        if now < until:
            holds[key] = (d, cmd, missing, until)
            continue
        ready.append((d, cmd))
        if key in waiting:
            gave_up[key] = missing
    # Judged now (ready or cancelled): no longer waiting. Blocked ones come back in ``settle``.
    done = [k for k in waiting if k not in holds and k not in gave_up]
    await store.drop(session, done)
    await store.hold(session, list(holds.values()), now)
    for d, cmd, _, until in holds.values():
        timer_key = f"{cmd.sequence_id}:{cmd.step}"
        patient = d.envelope.patient_key
        await runtime.timers.schedule(session, HELD_TIMER, timer_key, until, patient_key=patient)
    _count("held", len([k for k in holds if k not in waiting]))
    _count("released", len(done))
    return Sorted(ready, gave_up, cards)


def _count(outcome: str, n: int) -> None:
    if n:
        STEPS_HELD.labels(outcome).inc(n)


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
    rows = []
    for key, missing in gave_up.items():
        if key not in blocked:
            continue
        why = pre.why(missing, wait)
        if blocked[key] != pre.BLOCK_REASONS[missing].value:
            why = f"{blocked[key]} while waiting: {why}"
        rows.append({"s": key[0], "n": key[1], "r": blocked[key], "why": why, "now": now})
    await store.mark_blocked(session, rows)
    _count("blocked", len(rows))
    await store.drop(session, [k for k in gave_up if k not in blocked])


async def wake(runtime: Runtime, session: AsyncSession, patient_keys: Iterable[str]) -> None:
    """Something these patients' steps may wait for has arrived: look at them now."""
    keys = sorted(set(patient_keys))
    if keys:
        await store.lock(session, keys)  # see sort_out
        await store.due_now(session, keys, HELD_TIMER, runtime.clock.now())


Plan = Callable[[AsyncSession, Sequence[Delivery]], Awaitable[None]]


def timer_handler(plan: Plan) -> TimerHandler:
    """Held steps whose timer fired go through ``plan`` (``sending.plan_sends``) again."""

    async def fire(session: AsyncSession, timers: Sequence[Timer]) -> None:
        keys = [(sid, int(step)) for sid, _, step in (t.key.rpartition(":") for t in timers)]
        rows = await store.commands(session, keys)
        if rows:
            await plan(session, [_delivery(command, headers) for command, headers in rows])

    return fire


def _delivery(command: str, headers: Any) -> Delivery:
    envelope = parse_event(command.encode())
    trace = {str(k): str(v) for k, v in (headers or {}).items()}
    return Delivery(envelope, COMMANDS.name, -1, -1, TraceContext(), trace)
