"""Prometheus counters every service exposes on its own /metrics (pipeline health).

Labels are low-cardinality and PHI-free: service, topic, event type, reason. Never a patient
key, a clinic's patient id, a phone or a message.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter(
    "revisit_events_consumed_total",
    "Events a service consumed and committed, by topic and event type",
    ["service", "topic", "event_type"],
)
EVENTS_DUPLICATE = Counter(
    "revisit_events_duplicate_total",
    "Redelivered events skipped by the inbox",
    ["service", "consumer"],
)
EVENTS_DEAD_LETTERED = Counter(
    "revisit_events_dead_lettered_total",
    "Messages sent to a dead-letter topic, by source topic and reason kind",
    ["service", "topic", "reason"],
)
EVENTS_PUBLISHED = Counter(
    "revisit_events_published_total",
    "Events the outbox relay published",
    ["service"],
)
TIMERS_FIRED = Counter(
    "revisit_timers_fired_total",
    "Durable timers fired",
    ["service"],
)
BATCH_SECONDS = Histogram(
    "revisit_consumer_batch_seconds",
    "Time to handle one consumed batch (parse, transaction, commit)",
    ["service", "consumer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
