"""Composition root of the segmenter."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from services.segmenter import api, api_onboarding, api_preview, handlers
from services.segmenter.repository import SCHEMA, SWEEP_TIMER
from services.segmenter.settings import SegmenterSettings
from shared.config import DEFAULT_PORTS, RevisitSettings
from shared.consumer import Subscription
from shared.events import ehr
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.timers import TimerHandler
from shared.topics import EHR_EVENTS, ESCALATIONS

# The EHR events that shape a journey, and the resolutions of the service-recovery cases the
# segmenter raised (on the escalations topic). One group for both: one join at start-up.
EVENT_TYPES = frozenset(
    {cls.event_type for cls in ehr.PAYLOADS if cls is not ehr.ConsentChanged}
    | {"EscalationResolved"}
)


def build_spec(settings: SegmenterSettings | None = None) -> ServiceSpec:
    """The segmenter's spec; ``settings`` default to the environment, read at start-up."""

    resolved: list[SegmenterSettings] = []

    def config() -> SegmenterSettings:
        if not resolved:
            resolved.append(settings if settings is not None else SegmenterSettings())
        return resolved[0]

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        return [
            Subscription(
                (EHR_EVENTS, ESCALATIONS),
                "journeys",
                handlers.ehr_event_handler(runtime, config()),
                event_types=EVENT_TYPES,
            )
        ]

    def timer_handlers(runtime: Runtime) -> Mapping[str, TimerHandler]:
        own = config()
        return {
            SWEEP_TIMER: handlers.sweep_timer_handler(runtime, own),
            handlers.REEVALUATE_TIMER: handlers.reevaluate_timer_handler(runtime, own),
        }

    async def _start(runtime: Runtime) -> None:
        own = config()
        runtime.extras[api_preview.SEQUENCER_URL_EXTRA] = (
            own.revisit_segmenter_sequencer_url or f"http://127.0.0.1:{DEFAULT_PORTS['sequencer']}"
        )
        await handlers.start_hook(own)(runtime)

    return ServiceSpec(
        name="segmenter",
        schema=SCHEMA,
        subscriptions=subscriptions,
        timer_handlers=timer_handlers,
        routers=(api.router, api_onboarding.router, api_preview.router),
        on_start=lambda runtime: _start(runtime),
        on_stop=handlers.stop,
        title="Revisit segmenter",
        description=(
            "Keeps each patient's care journey and finds documented, unfinished care needs: "
            "who is in which recall segment, why, and from which record."
        ),
    )


SPEC = build_spec()


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(build_spec(SegmenterSettings()), settings)
