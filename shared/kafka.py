"""Broker factories and topic creation, with settings that are right on tansu and on Kafka.

See docs/kafka-notes.md: topics are created explicitly with a fixed partition count,
idempotence is a setting (off on the embedded broker), and consumers never auto-commit.

Dead-letter topics keep their records for ``KAFKA_DLQ_RETENTION_DAYS`` (30): long enough for a
person to look at them and replay them (``revisit dlq``), set on the topic at creation and
brought back to that value on every start (an operator may have changed it by hand). The
embedded broker stores the setting but does not apply it (docs/kafka-notes.md).

Every Kafka client of the services and of the tools (producer, FastStream broker, consumer,
admin) is built here, so each one gets the transport security of ``KafkaSettings``: TLS
(optionally with a client certificate) and SASL SCRAM. A test keeps it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from shared.config import KafkaSettings
from shared.topics import DLQ_SUFFIX, all_topic_names

log = logging.getLogger(__name__)


def kafka_settings(kafka: KafkaSettings | str) -> KafkaSettings:
    """Settings as given, or, for a bare bootstrap address (tests, benches, the embedded
    broker), the environment's settings pointed at that address."""
    if isinstance(kafka, KafkaSettings):
        return kafka
    return KafkaSettings(kafka_bootstrap_servers=kafka)


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    if not settings.uses_tls:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_security(settings: KafkaSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments of the transport security (for every client)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_sasl_mechanism:
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same, in FastStream's terms."""
    context = ssl_context(settings)
    use_ssl = settings.uses_tls
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if settings.kafka_sasl_mechanism == "SCRAM-SHA-256":
        return SASLScram256(user, password, ssl_context=context, use_ssl=use_ssl)
    if settings.kafka_sasl_mechanism == "SCRAM-SHA-512":
        return SASLScram512(user, password, ssl_context=context, use_ssl=use_ssl)
    return BaseSecurity(ssl_context=context) if use_ssl else None


def make_producer(kafka: KafkaSettings | str, client_id: str, **options: Any) -> AIOKafkaProducer:
    settings = kafka_settings(kafka)
    config: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "linger_ms": 5,
        "max_batch_size": 65536,
        "request_timeout_ms": 15000,
    }
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        **(config | options | client_security(settings)),
    )


def make_consumer(
    kafka: KafkaSettings | str, client_id: str, *topics: str, **options: Any
) -> AIOKafkaConsumer:
    """A consumer for tools and samplers (services consume through ``make_broker``)."""
    settings = kafka_settings(kafka)
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        **(options | client_security(settings)),
    )


def make_admin(kafka: KafkaSettings | str, client_id: str) -> AIOKafkaAdminClient:
    settings = kafka_settings(kafka)
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        **client_security(settings),
    )


def make_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """The FastStream broker a service subscribes with (consumers only: the relay produces)."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        allow_auto_create_topics=False,
        graceful_timeout=5.0,
        security=broker_security(settings),
        # Our JSON logging covers consumption; FastStream's own colored access log would
        # print message ids per event and bypass the PHI guard's formatting.
        logger=None,
    )


def dlq_config(retention_days: int) -> dict[str, str]:
    return {"retention.ms": str(retention_days * 24 * 3600 * 1000)}


async def ensure_topics(
    bootstrap: KafkaSettings | str,
    partitions: int,
    replication_factor: int = 1,
    names: Iterable[str] | None = None,
    dlq_retention_days: int = 30,
) -> list[str]:
    """Create every topic (and its DLQ twin) that does not exist yet; returns those created.

    Dead-letter topics get (and keep) ``retention.ms`` of ``dlq_retention_days``."""
    wanted = list(names) if names is not None else all_topic_names()
    admin = make_admin(bootstrap, "revisit-admin")
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
