"""Broker factories and topic creation, with settings that are right on tansu and on Kafka.

See docs/kafka-notes.md: topics are created explicitly with a fixed partition count,
idempotence is a setting (off on the embedded broker), and consumers never auto-commit.

Dead-letter topics keep their records for ``KAFKA_DLQ_RETENTION_DAYS`` (30): long enough for a
person to look at them and replay them (``revisit dlq``), set on the topic at creation and
brought back to that value on every start (an operator may have changed it by hand). The
embedded broker stores the setting but does not apply it (docs/kafka-notes.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from shared.config import KafkaSettings
from shared.topics import DLQ_SUFFIX, all_topic_names

log = logging.getLogger(__name__)


def make_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
        max_batch_size=65536,
        request_timeout_ms=15000,
    )


def make_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """The FastStream broker a service subscribes with (consumers only: the relay produces)."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        allow_auto_create_topics=False,
        graceful_timeout=5.0,
        # Our JSON logging covers consumption; FastStream's own colored access log would
        # print message ids per event and bypass the PHI guard's formatting.
        logger=None,
    )


def dlq_config(retention_days: int) -> dict[str, str]:
    return {"retention.ms": str(retention_days * 24 * 3600 * 1000)}


async def ensure_topics(
    bootstrap: str,
    partitions: int,
    replication_factor: int = 1,
    names: Iterable[str] | None = None,
    dlq_retention_days: int = 30,
) -> list[str]:
    """Create every topic (and its DLQ twin) that does not exist yet; returns those created.

    Dead-letter topics get (and keep) ``retention.ms`` of ``dlq_retention_days``."""
    wanted = list(names) if names is not None else all_topic_names()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="revisit-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            # Another process may create them first: the outcome is the same.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            partitions,
                            replication_factor,
                            topic_configs=dlq_config(dlq_retention_days)
                            if n.endswith(DLQ_SUFFIX)
                            else None,
                        )
                        for n in missing
                    ]
                )
        kept = [n for n in wanted if n.endswith(DLQ_SUFFIX) and n in existing]
        if kept:
            try:
                await admin.alter_configs(
                    [
                        ConfigResource(ConfigResourceType.TOPIC, n, dlq_config(dlq_retention_days))
                        for n in kept
                    ]
                )
            except Exception as exc:  # a broker that refuses: the topics still work
                log.warning("DLQ retention not updated", extra={"error": type(exc).__name__})
        return missing
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), timeout=5)
