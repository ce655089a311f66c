"""Property: no interleaving of STOP replies, command retries, redeliveries, provider failures
and crashes ever sends after an opt-out, or sends one step twice.

Each example is a program run against the real database and the real handler, inbound and
dispatcher code, with the dispatcher driven one phase at a time (claim -> provider call ->
record) so a crash can fall between any two phases. The provider is a recording fake that, like
Twilio, is NOT idempotent: every call it accepts is a message on the patient's phone.

"After an opt-out" is judged at the send decision: a message whose send decision committed
before the STOP committed may still be handed to the provider (the two are ordered by a row
lock on the patient's card); nothing decided after it may.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.messenger import handlers, inbound
from services.messenger.context import MessengerContext
from services.messenger.dispatcher import Dispatcher
from services.messenger.providers.base import (
    Lookup,
    LookupResult,
    MessageProvider,
    Outcome,
    OutgoingMessage,
    Receipt,
    SendResult,
)
from services.messenger.scheduling.sandbox import SandboxScheduling
from services.messenger.settings import MessengerSettings
from shared.clock import FixedClock
from shared.events.common import Channel
from shared.events.envelope import Envelope
from shared.events.messages import FailureReason
from shared.inbox import Inbox
from shared.outbox import Outbox
from shared.outreach_policy import DEFAULT_POLICY
from shared.runtime import Runtime
from shared.timers import Timers
from tests.messenger.conftest import (
    Messenger,
    delivery,
    envelope,
    patient_upserted,
    phone,
    send_step,
    zone_at_local_hour,
)

COUNTER = itertools.count()
NO_CAPS = DEFAULT_POLICY.model_copy(update={"per_day": 0, "per_week": 0})


@dataclass
class Delivered:
    key: str
    body: str


class RecordingPhone(MessageProvider):
    """Every accepted call is a message on the phone (no idempotency, like Twilio)."""

    channels = frozenset({Channel.sms})
    sender = "prop"

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.delivered: list[Delivered] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        if self.mode in ("ok", "ambiguous_sent"):
            self.delivered.append(Delivered(message.idempotency_key, message.body))
        if self.mode == "ok":
            return SendResult.ok(Receipt(self.name, f"pm-{uuid.uuid4().hex[:8]}"))
        if self.mode == "retry":
            return SendResult(Outcome.retry, detail="refused")
        if self.mode == "rejected":
            return SendResult(Outcome.rejected, failure=FailureReason.invalid_address)
        return SendResult(Outcome.ambiguous, detail="timeout")

    async def lookup(self, message: OutgoingMessage) -> LookupResult:
        if any(d.key == message.idempotency_key for d in self.delivered):
            return LookupResult(Lookup.found, Receipt(self.name, "pm-found"))
        return LookupResult(Lookup.not_found)


@dataclass
class Batch:
    rows: list[dict[str, Any]]
    decided_at_op: int
    results: list[SendResult] | None = None


@dataclass
class World:
    messenger: Messenger
    runtime: Runtime
    ctx: MessengerContext
    phone: RecordingPhone
    dispatcher: Dispatcher
    patient_key: str
    number: str
    commands: list[Envelope[Any]] = field(default_factory=list)
    in_flight: list[Batch] = field(default_factory=list)
    decided: dict[str, int] = field(default_factory=dict)  # step key -> op of its send decision
    stop_op: int | None = None
    op: int = 0

    async def consume(self, event: Envelope[Any]) -> None:
        """What the consumer runner does: inbox claim and the handler, in one transaction."""
        handler = handlers.commands_handler(self.runtime, self.ctx)
        async with self.runtime.sessions() as session, session.begin():
            fresh = await self.runtime.inbox.claim(session, "messenger.commands", [event.event_id])
            if fresh:
                await handler(session, [delivery(event)])

    async def sql(self, statement: str) -> None:
        async with self.runtime.sessions() as session, session.begin():
            await session.execute(text(statement), {"p": self.phone.name})

    async def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "command":
            _, seq, step = op
            # No frequency caps here: the property is about opt-outs and duplicates.
            command = send_step(f"seq-{self.patient_key}-{seq}", step, policy=NO_CAPS)
            event = envelope(command, self.patient_key)
            self.commands.append(event)
            await self.consume(event)
        elif kind == "redeliver" and self.commands:
            await self.consume(self.commands[op[1] % len(self.commands)])
        elif kind == "stop":
            async with self.runtime.sessions() as session, session.begin():
                await inbound.receive(
                    self.runtime,
                    self.ctx,
                    session,
                    inbound.InboundMessage(
                        Channel.sms, "prop", f"in-{uuid.uuid4().hex}", self.number, "STOP"
                    ),
                )
            if self.stop_op is None:
                self.stop_op = self.op
        elif kind == "claim":
            rows, _ = await self.dispatcher.claim()
            if rows:
                self.in_flight.append(Batch(rows, self.op))
                for row in rows:
                    self.decided[row["send_ref"]] = self.op  # the identity the phone sees
        elif kind == "call":
            pending = [b for b in self.in_flight if b.results is None]
            if pending:
                self.phone.mode = op[1]
                pending[0].results = await self.dispatcher.call(pending[0].rows)
        elif kind == "record":
            called = [b for b in self.in_flight if b.results is not None]
            if called:
                batch = called[0]
                self.in_flight.remove(batch)
                assert batch.results is not None
                await self.dispatcher.record(batch.rows, batch.results)
        elif kind == "crash":
            self.in_flight.clear()  # the process dies: leased rows stay "sending"
        elif kind == "reconcile":
            live = [r["message_id"] for b in self.in_flight for r in b.rows]
            async with self.runtime.sessions() as session, session.begin():
                await session.execute(
                    text(
                        "UPDATE messenger.outgoing SET lease_until = now() - interval '1 second' "
                        "WHERE provider = :p AND status = 'sending' AND NOT message_id = ANY(:live)"
                    ),
                    {"p": self.phone.name, "live": live},
                )
            await self.dispatcher.reconcile_once()
        elif kind == "cycle":  # one dispatcher cycle that may die part-way
            _, mode, crash_at = op
            await self.run(("claim",))
            if crash_at != "after_claim":
                await self.run(("call", mode))
                if crash_at != "after_call":
                    await self.run(("record",))
            await self.run(("crash",)) if crash_at != "none" else None
            return
        elif kind == "retry_now":
            await self.sql(
                "UPDATE messenger.outgoing SET available_at = now() "
                "WHERE provider = :p AND status = 'queued'"
            )
        self.op += 1

    def check(self) -> None:
        steps = [d for d in self.phone.delivered if d.key.startswith("seq-")]
        keys = [d.key for d in steps]
        assert len(keys) == len(set(keys)), f"a step reached the phone twice: {keys}"
        if self.stop_op is not None:
            late = [k for k in keys if self.decided[k] > self.stop_op]
            assert not late, f"sent after the opt-out: {late}"
        confirmations = [d for d in self.phone.delivered if "unsubscribed" in d.body]
        assert len(confirmations) <= 1, "more than one opt-out confirmation"

    async def drain(self) -> None:
        """Every process restarts and runs until nothing is queued or in flight."""
        await self.run(("crash",))
        for _ in range(12):
            if not await self.pending():
                return
            await self.run(("reconcile",))
            await self.run(("retry_now",))
            self.phone.mode = "ok"
            await self.run(("claim",))
            await self.run(("call", "ok"))
            await self.run(("record",))
        assert not await self.pending(), "the queue did not drain"

    async def pending(self) -> int:
        return int(
            await self.messenger.scalar(
                "SELECT count(*) FROM messenger.outgoing WHERE provider = :p AND status IN "
                "('queued', 'sending')",
                p=self.phone.name,
            )
        )


MODES = st.sampled_from(["ok", "retry", "ambiguous_sent", "ambiguous_lost", "rejected"])
OPERATIONS = st.one_of(
    st.tuples(st.just("cycle"), MODES, st.sampled_from(["none", "after_claim", "after_call"])),
    # Few sequences and steps, so the same step is commanded again (the sequencer's retries).
    st.tuples(st.just("command"), st.integers(0, 1), st.integers(1, 2)),
    st.tuples(st.just("redeliver"), st.integers(0, 20)),
    st.just(("stop",)),
    st.just(("claim",)),
    st.tuples(st.just("call"), MODES),
    st.just(("record",)),
    st.just(("crash",)),
    st.just(("reconcile",)),
    st.just(("retry_now",)),
)


async def world(messenger: Messenger) -> World:
    now = datetime.now(UTC)
    name = f"prop{next(COUNTER)}-{uuid.uuid4().hex[:6]}"
    recording = RecordingPhone(name)
    base = messenger.runtime
    runtime = Runtime(
        service="messenger",
        settings=base.settings,
        engine=base.engine,
        sessions=base.sessions,
        clock=FixedClock(now),
        outbox=Outbox("messenger"),
        inbox=Inbox("messenger"),
        timers=Timers("messenger"),
    )
    ctx = MessengerContext(
        settings=MessengerSettings(max_attempts=3),
        providers={name: recording},
        scheduling=SandboxScheduling(base.sessions, "UTC"),
        routes={Channel.sms: name},
    )
    clinic = f"clinic-p{uuid.uuid4().hex[:8]}"
    patient_key, number = f"{clinic}:pt-1", phone()
    contact = patient_upserted(phone_number=number, zone=zone_at_local_hour(13, now))
    async with base.sessions() as session, session.begin():
        await handlers.contacts_handler(runtime)(
            session, [delivery(envelope(contact, patient_key))]
        )
    return World(messenger, runtime, ctx, recording, Dispatcher(runtime, ctx), patient_key, number)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(program=st.lists(OPERATIONS, min_size=1, max_size=25))
# The interleavings that matter most, always tried: a crash after the provider took the message,
# an ambiguous answer, and a STOP between the send decision and the provider call.
@example(program=[("command", 0, 1), ("cycle", "ok", "after_call")])
@example(program=[("command", 0, 1), ("cycle", "ambiguous_sent", "none"), ("reconcile",)])
@example(program=[("command", 0, 1), ("cycle", "ambiguous_lost", "none"), ("stop",)])
@example(program=[("command", 0, 1), ("claim",), ("stop",), ("call", "ok"), ("record",)])
@example(program=[("command", 0, 1), ("stop",), ("redeliver", 0), ("command", 0, 1)])
@example(program=[("command", 0, 1), ("cycle", "ok", "none"), ("command", 0, 1)])
async def test_no_interleaving_sends_after_an_opt_out_or_sends_a_step_twice(
    messenger: Messenger, program: list[tuple[Any, ...]]
) -> None:
    w = await world(messenger)
    for op in program:
        await w.run(op)
        w.check()
    await w.drain()
    w.check()


async def test_the_harness_does_send_when_nothing_goes_wrong(messenger: Messenger) -> None:
    """Guard against a vacuous property: the same machinery delivers in the plain case."""
    w = await world(messenger)
    for op in [("command", 0, 1), ("command", 1, 1), ("claim",), ("call", "ok"), ("record",)]:
        await w.run(op)
    assert sorted(d.key for d in w.phone.delivered) == sorted(
        f"seq-{w.patient_key}-{i}:1:sms" for i in (0, 1)
    )
    await w.run(("stop",))
    await w.run(("command", 2, 1))
    await w.drain()
    assert [d.body for d in w.phone.delivered if "unsubscribed" in d.body]
    assert not [d for d in w.phone.delivered if d.key.startswith(f"seq-{w.patient_key}-2")]
