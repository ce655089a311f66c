"""Composition root of the sequencer: settings -> runtime -> one consumer, timers, ops API."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from services.sequencer import handlers
from services.sequencer.api import ROUTERS
from services.sequencer.api.deps import MESSENGER_URL_EXTRA, RULES_EXTRA
from services.sequencer.domain.rules import Rules
from services.sequencer.repository import SCHEMA, queries
from services.sequencer.settings import SequencerSettings
from shared.config import DEFAULT_PORTS, RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app, timer_poller
from shared.timers import TimerHandler
from shared.topics import ELIGIBILITY, ESCALATIONS, MESSAGES, REPLIES


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
        fire = handlers.timer_handler(runtime, rules(runtime))
        for n in range(own.timer_workers - 1):
            poller = timer_poller(runtime, {handlers.STEP_TIMER: fire, handlers.CLOSE_TIMER: fire})
            runtime.loops.add(f"timers-{n + 2}", poller.run)

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
