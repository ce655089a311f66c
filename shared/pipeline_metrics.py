"""Prometheus counters every service exposes on its own /metrics (pipeline health).

Labels are low-cardinality and PHI-free: service, topic, event type, reason. Never a patient
key, a clinic's patient id, a phone or a message.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
TRANSIENT_FAILURES = Counter(
    "revisit_transient_failures_total",
    "Batches that met a transient failure (database or broker) and were retried",
    ["service", "consumer"],
)
TIMERS_FAILED = Counter(
    "revisit_timers_failed_total",
    "Timer firings that failed, by outcome (retry: tried again later; parked: left for a person)",
    ["service", "kind", "outcome"],
)
LOOP_RESTARTS = Counter(
    "revisit_loop_restarts_total",
    "Background loops (relay, dispatcher, timers, sweepers) restarted after a crash",
    ["service", "loop"],
)
LOOP_UP = Gauge(
    "revisit_loop_up",
    "1 while a supervised background loop runs, 0 while it is down awaiting a restart",
    ["service", "loop"],
)
LEADER = Gauge(
    "revisit_leader",
    "1 while this process holds the leadership lock of a singleton loop (relay, dispatcher)",
    ["service", "loop"],
)
