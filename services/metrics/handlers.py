"""Metrics shell: count every new event once, in the inbox's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics import domain, repository
from shared.consumer import BatchHandler, Delivery
from shared.runtime import Runtime


def counting_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        await repository.add_counts(session, domain.tally(d.envelope for d in deliveries))

    return handle


async def exposition(runtime: Runtime) -> bytes:
    """The read model as Prometheus text: read from Postgres, so every replica agrees."""
    async with runtime.sessions() as session:
        rows = await repository.all_counts(session)
    events = CounterMetricFamily(
        "revisit_pipeline_events",
        "Events seen on Revisit's topics, by clinic and event type",
        labels=["clinic_id", "event_type"],
    )
    funnel = CounterMetricFamily(
        "revisit_funnel", "Recall funnel steps, by clinic and step", labels=["clinic_id", "step"]
    )
    for clinic_id, event_type, n in rows:
        events.add_metric([clinic_id, event_type], n)
        if event_type in domain.FUNNEL:
            funnel.add_metric([clinic_id, domain.FUNNEL[event_type]], n)

    class _Snapshot:
        def collect(self) -> list[CounterMetricFamily]:
            return [events, funnel]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())
    return generate_latest(registry)
