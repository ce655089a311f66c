"""The read model and the pipeline sample as Prometheus text, appended to /metrics.

Read-model figures come from Postgres on each scrape, so every replica reports the same values
(dashboards take ``max without (instance)``); lag and DLQ figures come from the last background
sample. Labels: clinic_id, segment, workflow, pilot_id, arm, stage, phase, intent, barrier,
channel, status, reason, severity, service, group, topic, service_line, outcome. Never a patient
key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from services.metrics.domain import counting, pilots
from services.metrics.offsets import OffsetSample
from services.metrics.repository import counts, figures, pilot_reports
from services.metrics.repository import freed_slots as freed_figures
from shared.events.pilot import PilotPlan
from shared.pilots import phase_of, week_of
from shared.runtime import Runtime

log = logging.getLogger(__name__)

# Every series this module exposes, with its label names: the dashboards' contract (a test
# checks the exposition against it; deploy checks can read it instead of scraping).
SERIES: dict[str, frozenset[str]] = {
    name: frozenset(labels)
    for name, labels in {
        "revisit_pipeline_events_total": ("clinic_id", "event_type"),
        "revisit_funnel_total": ("clinic_id", "step"),
        "revisit_messages_total": ("clinic_id", "channel", "status"),
        "revisit_sends_blocked_total": ("clinic_id", "reason"),
        "revisit_recall_episodes": ("clinic_id", "segment", "workflow", "stage"),
        "revisit_recall_completed_visits": ("clinic_id", "segment", "workflow"),
        "revisit_recall_revenue_recovered_cents": ("clinic_id", "segment", "workflow"),
        "revisit_recall_time_to_booking_seconds": ("clinic_id", "segment", "quantile"),
        "revisit_recall_replies": ("clinic_id", "segment", "pilot_id", "intent", "barrier"),
        "revisit_pilot_episodes": ("clinic_id", "pilot_id", "arm", "stage"),
        "revisit_pilot_revenue_recovered_cents": ("clinic_id", "pilot_id", "arm"),
        "revisit_pilot_difference": ("clinic_id", "pilot_id", "figure", "bound"),
        "revisit_pilot_phase": ("clinic_id", "pilot_id", "phase"),
        "revisit_pilot_previous_episodes": ("clinic_id", "pilot_id", "stage"),
        "revisit_pilot_previous_difference": ("clinic_id", "pilot_id", "figure", "bound"),
        "revisit_escalation_response_seconds": ("clinic_id", "severity", "until", "quantile"),
        "revisit_freed_slots": ("clinic_id", "service_line", "outcome"),
        "revisit_freed_slot_offers": ("clinic_id", "service_line"),
        "revisit_freed_slot_revenue_kept_cents": ("clinic_id", "service_line"),
        "revisit_freed_slot_time_to_refill_seconds": ("clinic_id", "quantile"),
        "revisit_consumer_lag": ("service", "group", "topic"),
        "revisit_dlq_messages": ("topic",),
        "revisit_read_model_up": (),
        "revisit_offset_sampler_up": (),
        "revisit_offset_sampler_errors_total": (),
    }.items()
}


class _Snapshot(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


async def exposition(runtime: Runtime) -> bytes:
    families: list[Metric] = []
    up = GaugeMetricFamily(
        "revisit_read_model_up", "1 if the read-model figures could be read from Postgres"
    )
    try:
        families += await read_model_families(runtime)
        up.add_metric([], 1)
    except (OSError, SQLAlchemyError) as exc:
        # The pipeline figures below matter most exactly when the database is away.
        log.warning("read model unavailable for /metrics", extra={"error": type(exc).__name__})
        up.add_metric([], 0)
    families.append(up)
    sampler = runtime.context.sampler
    if sampler is not None:
        families += pipeline_families(sampler.sample, sampler.errors)
    return render(families)


async def read_model_families(runtime: Runtime) -> list[Metric]:
    async with runtime.sessions() as session:
        event_rows = await counts.all_counts(session)
        send_rows = await counts.all_send_counts(session)
        episodes = await figures.episode_totals(session)
        booking_times = await figures.time_to_booking(session)
        pilot_rows = await figures.pilot_totals(session)
        escalations = await figures.escalation_times(session)
        replies = await figures.reply_totals(session)
        plans = await pilot_reports.all_plans(session)
        freed = await freed_figures.totals(session)
        refill_times = await freed_figures.refill_times(session)
        previous = []
        for clinic_id, pilot_id, plan in plans:
            since, until = pilots.baseline_span(plan)
            rows = await pilot_reports.previous_candidates(session, clinic_id, plan, since, until)
            previous.append((clinic_id, pilot_id, plan, pilots.previous_weeks(plan, rows)))
    return [
        *event_families(event_rows),
        *send_families(send_rows),
        *episode_families(episodes, booking_times),
        reply_family(replies),
        *pilot_families(pilot_rows),
        *plan_families(previous, pilot_rows, runtime.clock.now()),
        *escalation_families(escalations),
        *freed_slot_families(freed, refill_times),
    ]


def event_families(rows: list[tuple[str, str, int]]) -> list[Metric]:
    events = CounterMetricFamily(
        "revisit_pipeline_events",
        "Events seen on Revisit's topics, by clinic and event type",
        labels=["clinic_id", "event_type"],
    )
    funnel = CounterMetricFamily(
        "revisit_funnel",
        "Events at each recall funnel step, by clinic and step (see revisit_recall_episodes "
        "for patients)",
        labels=["clinic_id", "step"],
    )
    for clinic_id, event_type, n in rows:
        events.add_metric([clinic_id, event_type], n)
        if event_type in counting.FUNNEL:
            funnel.add_metric([clinic_id, counting.FUNNEL[event_type]], n)
    return [events, funnel]


def send_families(rows: list[tuple[str, str, str, str, int]]) -> list[Metric]:
    messages = CounterMetricFamily(
        "revisit_messages",
        "Outreach steps by what happened at send time: sent, delivered, failed or blocked",
        labels=["clinic_id", "channel", "status"],
    )
    blocked = CounterMetricFamily(
        "revisit_sends_blocked",
        "Steps the messenger refused at send time, by reason",
        labels=["clinic_id", "reason"],
    )
    by_status: dict[tuple[str, str, str], int] = {}
    by_reason: dict[tuple[str, str], int] = {}
    for clinic_id, channel, status, reason, n in rows:
        key = (clinic_id, channel, status)
        by_status[key] = by_status.get(key, 0) + n
        if status == "blocked":
            by_reason[(clinic_id, reason)] = by_reason.get((clinic_id, reason), 0) + n
    for (clinic_id, channel, status), n in sorted(by_status.items()):
        messages.add_metric([clinic_id, channel, status], n)
    for (clinic_id, reason), n in sorted(by_reason.items()):
        blocked.add_metric([clinic_id, reason], n)
    return [messages, blocked]


def episode_families(
    rows: list[dict[str, Any]], booking_times: list[dict[str, Any]]
) -> list[Metric]:
    episodes = GaugeMetricFamily(
        "revisit_recall_episodes",
        "Eligibilities (one patient, one segment, one need) that reached each stage",
        labels=["clinic_id", "segment", "workflow", "stage"],
    )
    visits = GaugeMetricFamily(
        "revisit_recall_completed_visits",
        "Completed visits attributed to outreach (rebooked within the window, then fulfilled)",
        labels=["clinic_id", "segment", "workflow"],
    )
    revenue = GaugeMetricFamily(
        "revisit_recall_revenue_recovered_cents",
        "Charges of the completed visits attributed to outreach, in cents",
        labels=["clinic_id", "segment", "workflow"],
    )
    for r in rows:
        labels = [r["clinic_id"], r["segment"], r["workflow"]]
        for stage in figures.STAGES:
            episodes.add_metric([*labels, stage], r[stage])
        visits.add_metric(labels, r["completed_visits"])
        revenue.add_metric(labels, r["revenue_cents"])
    delay = GaugeMetricFamily(
        "revisit_recall_time_to_booking_seconds",
        "Time from the first outreach message to the attributed booking (median and p90)",
        labels=["clinic_id", "segment", "quantile"],
    )
    for r in booking_times:
        delay.add_metric([r["clinic_id"], r["segment"], "0.5"], r["p50"])
        delay.add_metric([r["clinic_id"], r["segment"], "0.9"], r["p90"])
    return [episodes, visits, revenue, delay]


def pilot_families(rows: list[dict[str, Any]]) -> list[Metric]:
    cohort = GaugeMetricFamily(
        "revisit_pilot_episodes",
        "Pilot cohorts by arm and stage, counted from assignment (intent to treat)",
        labels=["clinic_id", "pilot_id", "arm", "stage"],
    )
    revenue = GaugeMetricFamily(
        "revisit_pilot_revenue_recovered_cents",
        "Charges of completed visits booked within the window after assignment, in cents",
        labels=["clinic_id", "pilot_id", "arm"],
    )
    difference = GaugeMetricFamily(
        "revisit_pilot_difference",
        "Outreach minus holdout for a rate, with Newcombe's 95% interval (bound=low/high)",
        labels=["clinic_id", "pilot_id", "figure", "bound"],
    )
    arms: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    for r in rows:
        labels = [r["clinic_id"], r["pilot_id"], r["arm"]]
        for stage in figures.PILOT_STAGES:
            cohort.add_metric([*labels, stage], r[stage])
        revenue.add_metric(labels, r["revenue_cents"])
        arms.setdefault((r["clinic_id"], r["pilot_id"]), {})[r["arm"]] = r
    for (clinic_id, pilot_id), by_arm in sorted(arms.items()):
        for c in pilots.compare(by_arm):
            d = c.difference
            for bound, value in (("estimate", d.estimate), ("low", d.low), ("high", d.high)):
                if value is not None:
                    difference.add_metric([clinic_id, pilot_id, c.figure, bound], value)
    return [cohort, revenue, difference]


def reply_family(rows: list[dict[str, Any]]) -> Metric:
    replies = GaugeMetricFamily(
        "revisit_recall_replies",
        "Patients' replies by intent and barrier (the objections a pilot reviews in week 3)",
        labels=["clinic_id", "segment", "pilot_id", "intent", "barrier"],
    )
    for r in rows:
        labels = [r["clinic_id"], r["segment"], r["pilot_id"], r["intent"], r["barrier"]]
        replies.add_metric(labels, r["replies"])
    return replies


def plan_families(
    previous: list[tuple[str, str, PilotPlan, dict[str, int]]],
    pilot_rows: list[dict[str, Any]],
    now: datetime,
) -> list[Metric]:
    """Each pilot's week and phase, and the previous weeks against its outreach arm."""
    phase = GaugeMetricFamily(
        "revisit_pilot_phase",
        "The pilot's current week (1 define, 2 launch, 3 review, 4 compare), phase as a label",
        labels=["clinic_id", "pilot_id", "phase"],
    )
    cohort = GaugeMetricFamily(
        "revisit_pilot_previous_episodes",
        "The pilot's cohort definition applied to the weeks before its launch (observational)",
        labels=["clinic_id", "pilot_id", "stage"],
    )
    difference = GaugeMetricFamily(
        "revisit_pilot_previous_difference",
        "Outreach arm minus the previous weeks, Newcombe 95% (observational: not causal)",
        labels=["clinic_id", "pilot_id", "figure", "bound"],
    )
    outreach = {(r["clinic_id"], r["pilot_id"]): r for r in pilot_rows if r["arm"] == "outreach"}
    for clinic_id, pilot_id, plan, figures_of in previous:
        week = week_of(plan.starts_at, now)
        phase.add_metric([clinic_id, pilot_id, phase_of(week).value], week)
        for stage in ("assigned", "messaged", "clicked", "rebooked", "completed"):
            cohort.add_metric([clinic_id, pilot_id, stage], figures_of[stage])
        for c in pilots.compare_with(outreach.get((clinic_id, pilot_id)), figures_of):
            d = c.difference
            for bound, value in (("estimate", d.estimate), ("low", d.low), ("high", d.high)):
                if value is not None:
                    difference.add_metric([clinic_id, pilot_id, c.figure, bound], value)
    return [phase, cohort, difference]


def escalation_families(rows: list[dict[str, Any]]) -> list[Metric]:
    times = GaugeMetricFamily(
        "revisit_escalation_response_seconds",
        "Time from EscalationRaised to acknowledged / resolved (median and p90)",
        labels=["clinic_id", "severity", "until", "quantile"],
    )
    for r in rows:
        for until, prefix in (("acknowledged", "ack"), ("resolved", "resolve")):
            for q, col in (("0.5", "p50"), ("0.9", "p90")):
                value = r[f"{prefix}_{col}"]
                if value is not None:
                    times.add_metric([r["clinic_id"], r["severity"], until, q], value)
    return [times]


def freed_slot_families(
    rows: list[dict[str, Any]], refill_times: list[dict[str, Any]]
) -> list[Metric]:
    """Cancelled appointments' slots: freed (found free in the EHR), offered, refilled through
    an offer; the patients offered; the revenue kept; the time from cancellation to refill."""
    slots = GaugeMetricFamily(
        "revisit_freed_slots",
        "Freed slots by outcome: freed (free in the EHR after a cancellation), offered (to at "
        "least one patient), refilled (booked by a patient who was offered it)",
        labels=["clinic_id", "service_line", "outcome"],
    )
    offers = GaugeMetricFamily(
        "revisit_freed_slot_offers",
        "Patients offered a freed slot (one per patient and slot)",
        labels=["clinic_id", "service_line"],
    )
    revenue = GaugeMetricFamily(
        "revisit_freed_slot_revenue_kept_cents",
        "The practice's price of each refilled slot's service, in cents (slots without a price "
        "count 0)",
        labels=["clinic_id", "service_line"],
    )
    for r in rows:
        labels = [r["clinic_id"], r["service_line"]]
        for outcome in ("freed", "offered", "refilled"):
            slots.add_metric([*labels, outcome], r[outcome])
        offers.add_metric(labels, r["offers"])
        revenue.add_metric(labels, r["revenue_kept_cents"])
    delay = GaugeMetricFamily(
        "revisit_freed_slot_time_to_refill_seconds",
        "Time from the cancellation to the refill (median and p90)",
        labels=["clinic_id", "quantile"],
    )
    for r in refill_times:
        delay.add_metric([r["clinic_id"], "0.5"], r["p50"])
        delay.add_metric([r["clinic_id"], "0.9"], r["p90"])
    return [slots, offers, revenue, delay]


def pipeline_families(sample: OffsetSample, errors: int) -> list[Metric]:
    lag = GaugeMetricFamily(
        "revisit_consumer_lag",
        "Messages not yet committed by a consumer group (high-water mark - committed offset)",
        labels=["service", "group", "topic"],
    )
    for (group, topic), n in sorted(sample.lag.items()):
        lag.add_metric([group.split(".", 1)[0], group, topic], n)
    dlq = GaugeMetricFamily(
        "revisit_dlq_messages", "Messages in each dead-letter topic", labels=["topic"]
    )
    for topic, n in sorted(sample.dlq.items()):
        dlq.add_metric([topic], n)
    up = GaugeMetricFamily(
        "revisit_offset_sampler_up", "1 if the last lag/DLQ sample succeeded, else 0"
    )
    up.add_metric([], 1 if sample.ok else 0)
    failed = CounterMetricFamily(
        "revisit_offset_sampler_errors", "Lag/DLQ samples that failed (broker unreachable...)"
    )
    failed.add_metric([], errors)
    return [lag, dlq, up, failed]
