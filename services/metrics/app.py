"""Composition root of metrics: it reads every topic."""

from __future__ import annotations

from fastapi import FastAPI

from services.metrics import handlers
from services.metrics.repository import SCHEMA
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import ALL


def subscriptions(runtime: Runtime) -> list[Subscription]:
    handler = handlers.counting_handler(runtime)
    # One consumer group over every topic: one group join at start-up, not seven.
    return [Subscription(ALL, "read-model", handler)]


SPEC = ServiceSpec(
    name="metrics",
    schema=SCHEMA,
    subscriptions=subscriptions,
    extra_metrics=handlers.exposition,
    title="Revisit metrics",
    description="Completed visits, not clicks: the recall funnel and pipeline health.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
