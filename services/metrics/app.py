"""Composition root of metrics: it reads every topic and serves /metrics and /reports."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from services.metrics import exposition, handlers
from services.metrics.api import ROUTERS
from services.metrics.offsets import OffsetSampler
from services.metrics.repository import SCHEMA
from services.metrics.settings import MetricsContext, MetricsSettings
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import ALL


def make_spec(metrics_settings: MetricsSettings | None = None) -> ServiceSpec[MetricsContext]:
    """The metrics spec; its settings are read from the environment at start-up if not given."""

    def context(runtime: Runtime[MetricsContext]) -> MetricsContext:
        settings = metrics_settings or MetricsSettings()
        sampler = None
        if settings.lag_enabled:
            sampler = OffsetSampler(runtime.settings.kafka, settings.lag_interval_s)
        return MetricsContext(settings, sampler)

    def subscriptions(runtime: Runtime[MetricsContext]) -> list[Subscription]:
        window = timedelta(days=runtime.context.settings.attribution_days)
        # One consumer group over every topic: one group join at start-up, not seven.
        return [Subscription(ALL, "read-model", handlers.read_model_handler(window))]

    async def on_start(runtime: Runtime[MetricsContext]) -> None:
        window = timedelta(days=runtime.context.settings.attribution_days)

        async def rebuild(_stop: asyncio.Event) -> None:
            await handlers.rebuild_stale(runtime.sessions, window)

        # Rows derived with another attribution window or older rules are rebuilt from the
        # stored histories, in the background.
        runtime.loops.once("rebuild", rebuild)
        if runtime.context.sampler is not None:
            # Figures about the pipeline, not the pipeline itself: not required for readiness.
            runtime.loops.add("offsets", runtime.context.sampler.run, required=False)

    return ServiceSpec[MetricsContext](
        name="metrics",
        schema=SCHEMA,
        subscriptions=subscriptions,
        routers=ROUTERS,
        context=context,
        on_start=on_start,
        extra_metrics=exposition.exposition,
        title="Revisit metrics",
        description="Completed visits, not clicks: the recall funnel, pilots and pipeline health.",
    )


SPEC = make_spec()


def create_app(
    settings: RevisitSettings, metrics_settings: MetricsSettings | None = None
) -> FastAPI:
    return build_app(make_spec(metrics_settings) if metrics_settings else SPEC, settings)
