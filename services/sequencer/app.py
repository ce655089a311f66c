"""Composition root of the sequencer: settings -> runtime -> one consumer, timers, ops API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from fastapi import FastAPI

from services.sequencer import handlers
from services.sequencer.api import ROUTERS
from services.sequencer.api.deps import MESSENGER_URL_EXTRA, RULES_EXTRA
from services.sequencer.domain.rules import Rules
from services.sequencer.repository import SCHEMA, queries
from services.sequencer.settings import SequencerSettings
from shared.clock import ControlledClock
from shared.config import DEFAULT_PORTS, RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.timers import TimerHandler, TimerPoller
from shared.topics import ELIGIBILITY, ESCALATIONS, MESSAGES, REPLIES

POLLERS_EXTRA = "sequencer_pollers"


def build_spec(config: SequencerSettings | None = None) -> ServiceSpec:
    """The sequencer; ``config`` None reads ``REVISIT_SEQUENCER_*`` when the service starts."""

    def rules(runtime: Runtime) -> Rules:
        found = runtime.extras.get(RULES_EXTRA)
        if not isinstance(found, Rules):
            own = config if config is not None else SequencerSettings()
            found = own.rules(runtime.settings.revisit_default_time_zone)
            runtime.extras[RULES_EXTRA] = found
        return found

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        # One group for all four topics: one consumer-group join at start-up, not four.
        return [
            Subscription(
                topics=(ELIGIBILITY, REPLIES, MESSAGES, ESCALATIONS),
                name="outreach",
                handler=handlers.outreach_handler(runtime, rules(runtime)),
                event_types=handlers.CONSUMED,
            )
        ]

    def timer_handlers(runtime: Runtime) -> Mapping[str, TimerHandler]:
        fire = handlers.timer_handler(runtime, rules(runtime))
        return {handlers.STEP_TIMER: fire, handlers.CLOSE_TIMER: fire}

    async def on_start(runtime: Runtime) -> None:
        rules(runtime)
        own = config if config is not None else SequencerSettings()
        runtime.extras[MESSENGER_URL_EXTRA] = (
            own.messenger_url or f"http://127.0.0.1:{DEFAULT_PORTS['messenger']}"
        )
        # The runtime runs one poller; more overlap one batch's database round trips with the
        # next batch's decisions (bench/sequencer.py).
        stop = asyncio.Event()
        fire = handlers.timer_handler(runtime, rules(runtime))
        tasks = []
        for n in range(own.timer_workers - 1):
            poller = TimerPoller(
                runtime.sessions,
                SCHEMA,
                runtime.clock,
                {handlers.STEP_TIMER: fire, handlers.CLOSE_TIMER: fire},
                batch_size=runtime.settings.revisit_timer_batch,
                poll_interval=runtime.settings.revisit_poll_interval_ms / 1000,
            )
            if isinstance(runtime.clock, ControlledClock):
                runtime.clock.on_change(poller.wake)
            tasks.append(asyncio.create_task(poller.run(stop), name=f"sequencer-timers-{n + 2}"))
        runtime.extras[POLLERS_EXTRA] = (stop, tasks)

    async def on_stop(runtime: Runtime) -> None:
        stop, tasks = runtime.extras.get(POLLERS_EXTRA, (asyncio.Event(), []))
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=3)
        for task in tasks:
            task.cancel()

    async def extra_metrics(runtime: Runtime) -> bytes:
        async with runtime.sessions() as session:
            states = await queries.state_counts(session)
            arms = await queries.pilot_arm_counts(session)
        lines = [
            "# HELP revisit_sequencer_sequences Sequences by clinic, state and pilot arm",
            "# TYPE revisit_sequencer_sequences gauge",
            *(
                f'revisit_sequencer_sequences{{clinic_id="{c}",state="{s}",arm="{a}"}} {n}'
                for c, s, a, n in states
            ),
            "# HELP revisit_sequencer_pilot_patients Patients assigned to each pilot arm",
            "# TYPE revisit_sequencer_pilot_patients gauge",
            *(
                f'revisit_sequencer_pilot_patients{{clinic_id="{c}",pilot_id="{p}",arm="{a}"}} {n}'
                for c, p, a, n in arms
            ),
        ]
        return ("\n".join(lines) + "\n").encode()

    return ServiceSpec(
        name="sequencer",
        schema=SCHEMA,
        subscriptions=subscriptions,
        timer_handlers=timer_handlers,
        routers=ROUTERS,
        on_start=on_start,
        on_stop=on_stop,
        extra_metrics=extra_metrics,
        title="Revisit sequencer",
        description=(
            "Turns eligibility into one respectful, segment-specific outreach sequence per "
            "patient: consent, allowed hours, caps, stops, snoozes and pilots."
        ),
    )


SPEC = build_spec()


def create_app(settings: RevisitSettings, config: SequencerSettings | None = None) -> FastAPI:
    return build_app(build_spec(config) if config is not None else SPEC, settings)
