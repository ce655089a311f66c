"""Composition root of the sequencer."""

from __future__ import annotations

from fastapi import FastAPI

from services.sequencer import handlers
from services.sequencer.repository import SCHEMA
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.timers import TimerHandler
from shared.topics import ELIGIBILITY


def subscriptions(runtime: Runtime) -> list[Subscription]:
    return [Subscription((ELIGIBILITY,), "eligibility", handlers.eligibility_handler(runtime))]


def timer_handlers(runtime: Runtime) -> dict[str, TimerHandler]:
    return {handlers.STEP_TIMER: handlers.step_timer_handler(runtime)}


SPEC = ServiceSpec(
    name="sequencer",
    schema=SCHEMA,
    subscriptions=subscriptions,
    timer_handlers=timer_handlers,
    title="Revisit sequencer",
    description="Turns eligibility into respectful, segment-specific outreach sequences.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
