"""Consumer lag arithmetic, and /metrics when the read model's database is away."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from aiokafka import TopicPartition
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from services.metrics import exposition
from services.metrics.offsets import OffsetSample, OffsetSampler, group_lag, is_revisit_group
from services.metrics.settings import MetricsContext, MetricsSettings
from tests.metrics.prometheus_server import free_port

E0, E1 = TopicPartition("ehr.events.v1", 0), TopicPartition("ehr.events.v1", 1)
M0 = TopicPartition("outreach.messages.v1", 0)


def test_lag_is_high_water_mark_minus_the_committed_offset_per_topic() -> None:
    lag = group_lag(committed={E0: 90, E1: 10}, highwater={E0: 100, E1: 10, M0: 50}, low={})
    assert lag == {"ehr.events.v1": 10}  # the group never committed on outreach.messages.v1


def test_a_partition_of_a_consumed_topic_with_no_commit_lags_by_what_is_on_it() -> None:
    lag = group_lag(committed={E0: 5, E1: -1}, highwater={E0: 5, E1: 30}, low={E1: 4})
    assert lag == {"ehr.events.v1": 26}


def test_only_revisit_groups_are_reported() -> None:
    assert is_revisit_group("segmenter.journeys")
    assert not is_revisit_group("someone-elses-app")
    assert not is_revisit_group("metricsfoo.x")


async def test_metrics_still_answer_with_pipeline_figures_when_postgres_is_away() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    sampler = SimpleNamespace(
        sample=OffsetSample(
            lag={("segmenter.journeys", "ehr.events.v1"): 7},
            dlq={"ehr.events.v1.dlq": 2},
            ok=True,
        ),
        errors=0,
    )
    runtime: Any = SimpleNamespace(
        sessions=async_sessionmaker(engine),
        context=MetricsContext(MetricsSettings(), cast(OffsetSampler, sampler)),
    )
    try:
        body = (await exposition.exposition(runtime)).decode()
    finally:
        await engine.dispose()
    assert "revisit_read_model_up 0.0" in body
    assert (
        'revisit_consumer_lag{group="segmenter.journeys",service="segmenter",'
        'topic="ehr.events.v1"} 7.0'
    ) in body
    assert 'revisit_dlq_messages{topic="ehr.events.v1.dlq"} 2.0' in body
    assert "revisit_recall_episodes" not in body
