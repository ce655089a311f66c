"""The read model, the reports API and /metrics, fed through the real broker into Postgres."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.metrics import exposition, handlers
from services.metrics.domain.stats import newcombe_difference
from shared.events.common import Initiator, Segment, ServiceLine
from shared.events.eligibility import MissedAppointment
from shared.events.messages import Barrier, BlockReason, ReplyIntent
from shared.events.outreach import Arm
from shared.events.pilot import CohortFilters, PilotPlan
from tests.metrics.conftest import RunningMetrics, clinic, eventually
from tests.metrics.story import Story
from tests.metrics.test_metrics_freed_slots import freed_slot_events

pytestmark = pytest.mark.integration


def recovered(clinic_id: str) -> Story:
    """Cancelled, messaged, replied, rebooked, came, paid 150.00."""
    s = Story(clinic_id)
    seq = s.started(s.eligible(0), 1)
    s.sent(seq, 2)
    s.reply(seq, 3, ReplyIntent.book)
    appt = s.booked(4)
    s.kept(appt, 72)
    s.visit(appt, 73, cents=15_000)
    s.escalation(seq, 3.5, ack_after=0.5, resolve_after=2)
    return s


def booked_first(clinic_id: str) -> Story:
    s = Story(clinic_id)
    seq = s.started(s.eligible(0), 1)
    appt = s.booked(1.5)
    s.sent(seq, 2)
    s.visit(appt, 72)
    return s


def other_service(clinic_id: str) -> Story:
    s = Story(clinic_id)
    seq = s.started(s.eligible(0), 1)
    s.sent(seq, 2)
    s.reply(seq, 3, ReplyIntent.later, Barrier.cost)
    s.visit(s.booked(5, ServiceLine.laser), 80)
    return s


def no_show(clinic_id: str) -> Story:
    s = Story(clinic_id)
    seq = s.started(s.eligible(0), 1)
    s.sent(seq, 2, delivered_after=None)
    s.blocked(seq, 2.5, BlockReason.quiet_hours)
    s.no_show(s.booked(6), 70)
    s.opt_out(7)
    return s


def recall(clinic_id: str) -> Story:
    s = Story(clinic_id)
    e = s.eligible(0, Segment.follow_up_not_booked, ServiceLine.psoriasis_eczema)
    s.started(
        e,
        1,
        segment=Segment.follow_up_not_booked,
        line=ServiceLine.psoriasis_eczema,
        workflow="chronic-review",
    )
    return s


def funnel_rows(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {r["segment"]: r for r in response.json()["rows"]}


async def test_the_funnel_counts_each_definition_from_events_on_the_broker(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    stories = [f(c) for f in (recovered, booked_first, other_service, no_show, recall)]
    await metrics.publish(e for s in stories for e in s.events)
    auth = metrics.token(c)

    async def done() -> dict[str, Any] | None:
        rows = funnel_rows(await metrics.client.get("/reports/funnel", headers=auth))
        row = rows.get("cancelled_not_rescheduled")
        ready = row and row["completed_visits"] == 1 and row["opted_out"] == 1
        return rows if ready and "follow_up_not_booked" in rows else None

    rows = await eventually(done)
    assert rows, "the read model never caught up"
    row = rows["cancelled_not_rescheduled"]
    assert row["eligible"] == 4
    assert row["messaged"] == 4
    assert row["reached"] == 3  # the no-show story's message was never confirmed delivered
    assert row["replied"] == 2
    assert row["response_rate"] == pytest.approx(2 / 3)
    assert row["opted_out"] == 1
    assert row["rebooked"] == 2  # recovered + no-show; not booked-first, not the laser booking
    assert row["completed"] == 1
    assert row["completed_visits"] == 1
    assert row["revenue_cents"] == 15_000
    assert row["cancellations"] == 4
    assert row["cancellations_recovered"] == 1
    assert row["cancellation_recovery_rate"] == 0.25
    # booked 2 h and 4 h after the first message
    assert row["hours_to_booking_median"] == pytest.approx(3.0)
    assert rows["follow_up_not_booked"]["messaged"] == 0

    by_workflow = await metrics.client.get(
        "/reports/funnel", params={"group_by": "workflow,week"}, headers=auth
    )
    weeks = {(r["workflow_key"], r["week"]): r["eligible"] for r in by_workflow.json()["rows"]}
    assert weeks == {
        ("cancellation-recovery", "2026-03-02"): 4,
        ("chronic-review", "2026-03-02"): 1,
    }

    segments = await metrics.client.get("/reports/segments", headers=auth)
    seg = {r["segment"]: r for r in segments.json()["rows"]}
    assert seg["cancelled_not_rescheduled"]["reactivation_rate"] == 0.25
    assert seg["follow_up_not_booked"]["reactivation_rate"] is None

    barriers = await metrics.client.get("/reports/barriers", headers=auth)
    [week] = barriers.json()["rows"]
    assert (week["replies"], week["objections"], week["barrier_cost"], week["opt_outs"]) == (
        2,
        1,
        1,
        1,
    )
    assert week["intent_book"] == 1

    escalations = await metrics.client.get("/reports/escalations", headers=auth)
    [esc] = escalations.json()["rows"]
    assert (esc["raised"], esc["acknowledged"], esc["resolved"]) == (1, 1, 1)
    assert esc["minutes_to_ack_median"] == pytest.approx(30.0)
    assert esc["minutes_to_resolve_median"] == pytest.approx(120.0)


async def test_redelivered_events_never_count_twice(metrics: RunningMetrics) -> None:
    c = clinic()
    story = recovered(c)
    auth = metrics.token(c)

    async def completed() -> int:
        rows = (await metrics.client.get("/reports/funnel", headers=auth)).json()["rows"]
        return rows[0]["completed_visits"] if rows else 0

    await metrics.publish(story.events)
    assert await eventually(completed) == 1
    await metrics.publish(story.events)  # the relay published everything a second time
    marker = Story(c)
    marker.eligible(0, Segment.lapsed_patient)
    await metrics.publish(marker.events)  # once this is counted, the duplicates were read too

    async def marker_seen() -> bool:
        rows = (await metrics.client.get("/reports/funnel", headers=auth)).json()["rows"]
        return any(r["segment"] == "lapsed_patient" for r in rows)

    assert await eventually(marker_seen)
    rows = funnel_rows(await metrics.client.get("/reports/funnel", headers=auth))
    row = rows["cancelled_not_rescheduled"]
    assert (row["eligible"], row["messaged"], row["completed_visits"]) == (1, 1, 1)
    assert row["revenue_cents"] == 15_000
    body = (await metrics.client.get("/metrics")).text
    assert f'revisit_funnel_total{{clinic_id="{c}",step="sent"}} 1.0' in body
    duplicates = r'revisit_events_duplicate_total\{consumer="read-model",service="metrics"\} [1-9]'
    assert re.search(duplicates, body)


COSMETIC_BY_PATIENT = MissedAppointment(cancelled_by=Initiator.patient)
Sample = tuple[str, frozenset[tuple[str, str]]]


def _samples(exposition_text: str) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition_text)
        for sample in family.samples
    }


def _labels(base: dict[str, str], **more: str) -> frozenset[tuple[str, str]]:
    return frozenset({**base, **more}.items())


def _cosmetic(c: str, hours: float) -> tuple[Story, str]:
    s = Story(c)
    return s, s.eligible(hours, line=ServiceLine.neurotoxin, missed=COSMETIC_BY_PATIENT)


async def test_a_pilot_compares_its_outreach_arm_with_the_holdout_and_with_the_previous_weeks(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    pilot = f"pilot-{c}"
    start = Story(c).start  # the launch: week 2 of the pilot begins
    plan = PilotPlan(
        segment=Segment.cancelled_not_rescheduled,
        cohort=CohortFilters(service_lines=(ServiceLine.neurotoxin, ServiceLine.filler)),
        starts_at=start - timedelta(days=7),
        launched_at=start,
        ends_at=start + timedelta(days=23),
        baseline_days=28,
    )
    stories = []
    for i in range(6):  # outreach: 4 of 6 come back
        s, elig = _cosmetic(c, 0)
        seq = s.started(elig, 1, line=ServiceLine.neurotoxin, pilot_id=pilot, plan=plan)
        s.sent(seq, 2)
        if i < 2:
            s.clicked(seq, 1, 3)
        if i == 0:
            s.reply(seq, 24 * 15, ReplyIntent.decline, Barrier.uncertainty)
        if i == 1:
            s.reply(seq, 24 * 15.5, ReplyIntent.later, Barrier.cost)
        if i == 2:
            s.reply(seq, 24 * 16, ReplyIntent.later, Barrier.cost)
        if i < 4:
            appt = s.booked(24 * 9, ServiceLine.neurotoxin)
            s.visit(appt, 24 * 12, cents=10_000)
        stories.append(s)
    for i in range(5):  # holdout: 1 of 5 comes back on their own
        s, elig = _cosmetic(c, 0)
        s.started(elig, 1, pilot_id=pilot, arm=Arm.holdout, plan=plan)
        if i == 0:
            s.visit(s.booked(24 * 3, ServiceLine.neurotoxin), 24 * 5, cents=10_000)
        stories.append(s)
    # The previous weeks: five cosmetic cancellations of the 28 days before the launch (two come
    # back within the window), two the cohort does not take, one too old to count.
    for i in range(5):
        s, _ = _cosmetic(c, -24 * (3 + 4 * i))
        if i < 2:
            s.visit(s.booked(-24 * (3 + 4 * i) + 48, ServiceLine.neurotoxin), 24 * 2, cents=9_000)
        stories.append(s)
    for hours in (-24 * 5, -24 * 9):
        other = Story(c)
        other.eligible(hours, line=ServiceLine.mohs, missed=COSMETIC_BY_PATIENT)
        stories.append(other)
    old, _ = _cosmetic(c, -24 * 40)
    stories.append(old)
    await metrics.publish(e for s in stories for e in s.events)
    auth = metrics.token(c)

    async def report() -> dict[str, Any] | None:
        r = await metrics.client.get(f"/reports/pilots/{pilot}", headers=auth)
        if r.status_code != 200:
            return None
        body = r.json()
        arms, previous = body["arms"], body["previous_process"]["cohort"]
        full = arms["outreach"] and arms["holdout"] and arms["outreach"]["completed"] == 4
        done = previous and previous["completed"] == 2 and previous["screened_out"] == 2
        said = sum(o["replies"] for o in body["objections"]) == 3
        return body if full and done and said and arms["holdout"]["completed"] == 1 else None

    body = await eventually(report)
    assert body, "the pilot never appeared"
    started = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
    assert started == plan.starts_at  # weeks count from the define week, not the first assignment
    assert body["arms"]["outreach"]["assigned"] == 6
    assert body["arms"]["outreach"]["clicked"] == 2
    assert body["arms"]["holdout"]["messaged"] == 0
    assert body["arms"]["outreach"]["revenue_cents"] == 40_000
    completed = next(c for c in body["comparison"] if c["figure"] == "completed_rate")
    expected = newcombe_difference(4, 6, 1, 5)
    assert completed["difference"] == pytest.approx(expected.estimate)
    interval = (completed["ci_low"], completed["ci_high"])
    assert interval == pytest.approx((expected.low, expected.high))

    previous = body["previous_process"]
    assert previous["label"].startswith("observational")
    cohort = previous["cohort"]
    assert (cohort["assigned"], cohort["rebooked"], cohort["completed"]) == (5, 2, 2)
    assert (cohort["messaged"], cohort["screened_out"], cohort["unscreened"]) == (0, 2, 0)
    assert cohort["revenue_cents"] == 18_000
    rebooked = next(c for c in previous["comparison"] if c["figure"] == "rebooked_rate")
    expected = newcombe_difference(4, 6, 2, 5)
    assert rebooked["previous"] == {"successes": 2, "assigned": 5, "rate": 0.4}
    assert (rebooked["difference"], rebooked["ci_low"], rebooked["ci_high"]) == pytest.approx(
        (expected.estimate, expected.low, expected.high)
    )
    assert body["causal_claim"]["supported_by"] == "holdout"
    assert "observational" in body["causal_claim"]["why"]

    weeks = {(w["week"], w["arm"]): w for w in body["weeks"]}
    assert (1, "outreach") not in weeks  # week 1 defines: nobody was assigned
    assert weeks[(2, "outreach")]["assigned"] == 6 and weeks[(2, "outreach")]["clicked"] == 2
    assert weeks[(3, "outreach")]["rebooked"] == 4
    assert weeks[(4, "outreach")]["barrier_uncertainty"] == 1
    assert weeks[(4, "outreach")]["phase"] == (
        "compare rebooking and completion with the holdout and the previous weeks"
    )
    by_barrier = {o["barrier"]: o for o in body["objections"]}
    assert [o["barrier"] for o in body["objections"]] == ["cost", "uncertainty"]
    assert by_barrier["cost"]["replies"] == 2
    examples = by_barrier["cost"]["examples"]
    assert [e["intent"] for e in examples] == ["later", "later"]
    assert {e["patient_key"] for e in examples} == {stories[1].patient_key, stories[2].patient_key}
    assert all(e["reply_id"].startswith("in-") for e in examples)
    few = await metrics.client.get(f"/reports/pilots/{pilot}?examples=1", headers=auth)
    assert [len(o["examples"]) for o in few.json()["objections"]] == [1, 1]

    listed = await metrics.client.get("/reports/pilots", headers=auth)
    assert [p["pilot_id"] for p in listed.json()["rows"]] == [pilot]

    as_csv = await metrics.client.get(f"/reports/pilots/{pilot}?format=csv", headers=auth)
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    for section in ("comparison", "previous"):
        found = [r for r in table if r["section"] == section]
        assert {r["figure"] for r in found} == {"rebooked_rate", "completed_rate"}

    scraped = _samples((await metrics.client.get("/metrics")).text)
    mine = {"clinic_id": c, "pilot_id": pilot}
    [(phase, _)] = [
        (dict(k[1])["phase"], v)
        for k, v in scraped.items()
        if k[0] == "revisit_pilot_phase" and dict(k[1]).get("pilot_id") == pilot
    ]
    assert phase in {"define", "launch", "review", "compare", "follow_up"}
    assert scraped[("revisit_pilot_previous_episodes", _labels(mine, stage="completed"))] == 2
    clicked = _labels(mine, arm="outreach", stage="clicked")
    assert scraped[("revisit_pilot_episodes", clicked)] == 2
    low = _labels(mine, figure="rebooked_rate", bound="low")
    assert scraped[("revisit_pilot_previous_difference", low)] == pytest.approx(expected.low)
    cost = _labels(mine, segment="cancelled_not_rescheduled", intent="later", barrier="cost")
    assert scraped[("revisit_recall_replies", cost)] == 2

    outsider = metrics.token(clinic())
    hidden = await metrics.client.get(f"/reports/pilots/{pilot}", headers=outsider)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "no such pilot in the clinics this credential covers"


async def test_reports_answer_in_csv_when_asked_by_parameter_or_accept_header(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    await metrics.publish(recall(c).events)
    auth = metrics.token(c)

    async def as_csv() -> str | None:
        r = await metrics.client.get("/reports/funnel?format=csv", headers=auth)
        return r.text if r.text.count("\n") >= 2 else None

    body = await eventually(as_csv)
    assert body
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert (row["clinic_id"], row["segment"], row["eligible"]) == (c, "follow_up_not_booked", "1")
    assert row["response_rate"] == ""  # unknown, not zero: no one was reached
    by_header = await metrics.client.get("/reports/funnel", headers={**auth, "Accept": "text/csv"})
    assert by_header.headers["content-type"].startswith("text/csv")
    assert by_header.text == body


async def test_reports_need_a_credential_and_stay_inside_its_clinics(
    metrics: RunningMetrics,
) -> None:
    mine, theirs = clinic(), clinic()
    await metrics.publish([*recall(mine).events, *recall(theirs).events])
    both = metrics.token(mine, theirs)

    async def both_seen() -> bool:
        r = await metrics.client.get("/reports/funnel", headers=both)
        return {row["clinic_id"] for row in r.json()["rows"]} == {mine, theirs}

    assert await eventually(both_seen)
    assert (await metrics.client.get("/reports/funnel")).status_code == 401
    only_mine = metrics.token(mine)
    r = await metrics.client.get("/reports/funnel", headers=only_mine)
    assert {row["clinic_id"] for row in r.json()["rows"]} == {mine}
    refused = await metrics.client.get(
        "/reports/barriers", params={"clinic_id": theirs}, headers=only_mine
    )
    assert refused.status_code == 403
    assert theirs not in refused.text
    bad = await metrics.client.get(
        "/reports/funnel", params={"group_by": "patient"}, headers=only_mine
    )
    assert bad.status_code == 422
    dated = await metrics.client.get(
        "/reports/funnel", params={"from": "2026-03-09", "to": "2026-03-15"}, headers=only_mine
    )
    assert dated.json()["rows"] == []  # every eligibility here is from the week of 2 March


async def test_metrics_expose_the_funnel_pipeline_lag_and_dead_letters_without_patient_keys(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    story = recovered(c)
    await metrics.publish(story.events)
    # Only metrics reads the sequences topic: no other service's tests see this garbage.
    await metrics.publish_raw("outreach.sequences.v1", b"{not json", story.patient_key.encode())
    await metrics.publish_raw("escalations.v1.dlq", b"", b"x")  # any DLQ message counts

    wanted = [
        # labels come out in alphabetical order
        f'revisit_recall_episodes{{clinic_id="{c}",segment="cancelled_not_rescheduled",'
        'stage="completed",workflow="cancellation-recovery"} 1.0',
        f'revisit_recall_revenue_recovered_cents{{clinic_id="{c}",segment='
        '"cancelled_not_rescheduled",workflow="cancellation-recovery"} 15000.0',
        'revisit_consumer_lag{group="metrics.read-model",service="metrics",topic="ehr.events.v1"}',
        'revisit_events_dead_lettered_total{reason="malformed",service="metrics",'
        'topic="outreach.sequences.v1"}',
        "revisit_offset_sampler_up 1.0",
    ]

    def dead_letters(body: str, topic: str) -> float:
        found = re.search(rf'^revisit_dlq_messages{{topic="{topic}"}} (\S+)$', body, re.M)
        return float(found.group(1)) if found else 0.0

    async def missing() -> list[str]:
        body = (await metrics.client.get("/metrics")).text
        gaps = [w for w in wanted if w not in body]
        for topic in ("outreach.sequences.v1.dlq", "escalations.v1.dlq"):
            if dead_letters(body, topic) < 1:
                gaps.append(f"a message in {topic}")
        return gaps

    async def complete() -> bool:
        return not await missing()

    await eventually(complete)
    assert await missing() == []
    body = (await metrics.client.get("/metrics")).text
    assert story.patient not in body
    ack = (
        f'revisit_escalation_response_seconds{{clinic_id="{c}",quantile="0.5",severity="high",'
        'until="acknowledged"} 1800.0'
    )
    assert ack in body


async def test_changing_the_attribution_window_rebuilds_the_rows_from_the_stored_histories(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    s = Story(c)
    seq = s.started(s.eligible(0), 1)
    s.sent(seq, 2)
    s.visit(s.booked(24 * 10), 24 * 12)  # ten days after the first message
    await metrics.publish(s.events)
    auth = metrics.token(c)

    async def completed() -> int:
        rows = (await metrics.client.get("/reports/funnel", headers=auth)).json()["rows"]
        return rows[0]["completed_visits"] if rows else 0

    assert await eventually(completed) == 1
    runtime = metrics.app.state.runtime
    try:
        await handlers.rebuild_stale(runtime.sessions, timedelta(days=7))
        assert await completed() == 0  # a 7-day window no longer reaches the booking
    finally:
        await handlers.rebuild_stale(runtime.sessions, timedelta(days=30))
    assert await completed() == 1
    engine = create_async_engine(metrics.dsn)
    try:
        async with engine.connect() as conn:
            stale = await conn.scalar(
                text("SELECT count(*) FROM metrics.episodes WHERE window_days <> 30")
            )
        assert stale == 0
    finally:
        await engine.dispose()


async def test_the_exposition_keeps_to_its_declared_series_and_labels(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    s = Story(c)
    seq = s.started(s.eligible(0), 1, pilot_id=f"pilot-{c}")
    s.sent(seq, 2)
    s.blocked(seq, 3, BlockReason.frequency_cap)
    s.escalation(seq, 4, ack_after=1, resolve_after=2)
    s.visit(s.booked(5), 70)
    await metrics.publish([*s.events, *freed_slot_events(c, refilled_after=timedelta(hours=1))])
    runtime = metrics.app.state.runtime

    async def seen() -> str | None:
        body = (await exposition.exposition(runtime)).decode()
        done = f'pilot_id="pilot-{c}"' in body and "until=" in body
        return body if done and "revisit_freed_slot_time_to_refill_seconds" in body else None

    body = await eventually(seen)
    assert body
    names = set()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            assert sample.name in exposition.SERIES, sample.name
            assert set(sample.labels) == exposition.SERIES[sample.name], sample.name
            names.add(sample.name)
    assert names == set(exposition.SERIES)
