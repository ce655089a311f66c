"""Composition root of metrics: it reads every topic and serves /metrics and /reports."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from services.metrics import exposition, handlers
from services.metrics.api import ROUTERS
from services.metrics.offsets import OffsetSampler
from services.metrics.repository import SCHEMA
from services.metrics.settings import MetricsSettings
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import ALL

SETTINGS = "metrics_settings"


def make_spec(metrics_settings: MetricsSettings | None = None) -> ServiceSpec:
    """The metrics spec; its settings are read from the environment at start-up if not given."""

    def settings_of(runtime: Runtime) -> MetricsSettings:
        if SETTINGS not in runtime.extras:
            runtime.extras[SETTINGS] = metrics_settings or MetricsSettings()
        settings: MetricsSettings = runtime.extras[SETTINGS]
        return settings

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        window = timedelta(days=settings_of(runtime).attribution_days)
        # One consumer group over every topic: one group join at start-up, not seven.
        return [Subscription(ALL, "read-model", handlers.read_model_handler(window))]

    async def on_start(runtime: Runtime) -> None:
        settings = settings_of(runtime)
        window = timedelta(days=settings.attribution_days)
        # Rows derived with another attribution window or older rules are rebuilt from the
        # stored histories, in the background.
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(handlers.rebuild_stale(runtime.sessions, window), name="rebuild")
        ]
        if settings.lag_enabled:
            sampler = OffsetSampler(runtime.settings.kafka, settings.lag_interval_s)
            runtime.extras["offset_sampler"] = sampler
            # Figures about the pipeline, not the pipeline itself: not required for readiness.
            runtime.loops.add("offsets", sampler.run, required=False)
        runtime.extras["metrics_background"] = tasks

    async def on_stop(runtime: Runtime) -> None:
        tasks = runtime.extras.pop("metrics_background", [])
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=5)
            for task in tasks:
                task.cancel()

    return ServiceSpec(
        name="metrics",
        schema=SCHEMA,
        subscriptions=subscriptions,
        routers=ROUTERS,
        on_start=on_start,
        on_stop=on_stop,
        extra_metrics=exposition.exposition,
        title="Revisit metrics",
        description="Completed visits, not clicks: the recall funnel, pilots and pipeline health.",
    )


SPEC = make_spec()


def create_app(
    settings: RevisitSettings, metrics_settings: MetricsSettings | None = None
) -> FastAPI:
    return build_app(make_spec(metrics_settings) if metrics_settings else SPEC, settings)
