"""Composition root of the segmenter."""

from __future__ import annotations

from fastapi import FastAPI

from services.segmenter import handlers
from services.segmenter.repository import SCHEMA
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import EHR_EVENTS


def subscriptions(runtime: Runtime) -> list[Subscription]:
    return [Subscription((EHR_EVENTS,), "journeys", handlers.ehr_event_handler(runtime))]


SPEC = ServiceSpec(
    name="segmenter",
    schema=SCHEMA,
    subscriptions=subscriptions,
    title="Revisit segmenter",
    description="Keeps each patient's care journey and finds documented, unfinished care needs.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
