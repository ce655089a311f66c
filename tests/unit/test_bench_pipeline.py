"""The pipeline benchmark's load generator and the way its output is read (no stack needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRecord

from bench.pipeline_load import EVENTS_PER_PATIENT, patient_events, submissions
from bench.pipeline_profile import summarise
from bench.pipeline_report import LagSeries, Outcomes, parse_figures, percentile
from services.ingest.domain import parse_native
from shared.events.ehr import AppointmentCancelled, PatientUpserted

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_each_patient_is_an_upsert_with_a_mobile_then_a_cancellation_already_due() -> None:
    upserted, cancelled = patient_events("r1", 7, NOW)
    assert upserted["type"] == "PatientUpserted" and cancelled["type"] == "AppointmentCancelled"
    assert upserted["patient_id"] == cancelled["patient_id"] == "r1-0000007"
    assert upserted["payload"]["contacts"][0]["use"] == "mobile"
    recorded = datetime.fromisoformat(cancelled["payload"]["source"]["source_updated_at"])
    assert NOW - recorded > timedelta(hours=2)  # the rule's wait is over
    # What ingest's own native mapping makes of them: valid v1 payloads.
    PatientUpserted.model_validate(upserted["payload"])
    AppointmentCancelled.model_validate(cancelled["payload"])


def test_ingest_accepts_the_generated_submission_as_it_is() -> None:
    _, body = next(submissions("r2", 3, NOW, batch_events=250))
    facts = parse_native(json.loads(json.dumps(body)), clinic_id="clinic-x")
    assert len(facts) == 3 * EVENTS_PER_PATIENT


def test_submissions_never_split_a_patient_and_cover_every_patient_once() -> None:
    batches = list(submissions("r3", 251, NOW, batch_events=250))
    seen = [i for indexes, _ in batches for i in indexes]
    assert seen == list(range(251))
    for indexes, body in batches:
        assert len(body["events"]) == EVENTS_PER_PATIENT * len(indexes) <= 250
        ids = [e["patient_id"] for e in body["events"]]
        assert ids[0::2] == ids[1::2]  # upsert then cancellation, patient by patient


def test_figure_lines_are_read_back_with_name_value_unit_and_note() -> None:
    text = "\n".join(
        [
            "# bench pipeline: nproc=2",
            "pipeline_burst_20k_end_to_end: 1234 events/s (target >= 1000; EHR events)",
            "pipeline_burst_20k_wrongly_blocked: 0.00 patients (target 0; share 0.0000%)",
            "pipeline_ratio_end_to_end_vs_aiokafka: 0.12 (best burst / raw)",
            "BELOW TARGET: something",
        ]
    )
    figures = parse_figures(text)
    assert set(figures) == {
        "pipeline_burst_20k_end_to_end",
        "pipeline_burst_20k_wrongly_blocked",
        "pipeline_ratio_end_to_end_vs_aiokafka",
    }
    e2e = figures["pipeline_burst_20k_end_to_end"]
    assert (e2e.value, e2e.unit, e2e.note) == (1234.0, "events/s", "target >= 1000; EHR events")
    assert figures["pipeline_ratio_end_to_end_vs_aiokafka"].unit == ""


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) != percentile([], 99)  # NaN: nothing measured


def _record(key: str, event: dict[str, object], ms: int) -> ConsumerRecord:
    return ConsumerRecord(
        "t", 0, 0, ms, 0, key.encode(), json.dumps(event).encode(), None, 0, 0, []
    )


def test_outcomes_tell_sent_from_blocked_for_good_and_from_deferred() -> None:
    outcomes = Outcomes("unused:9092", "c:run-")
    outcomes.observe(_record("c:run-1", {"type": "PatientBecameEligible"}, 1_000))
    outcomes.observe(_record("c:run-1", {"type": "MessageSent"}, 1_500))
    outcomes.observe(
        _record("c:run-2", {"type": "MessageBlocked", "payload": {"reason": "quiet_hours"}}, 9)
    )
    outcomes.observe(
        _record("c:run-3", {"type": "MessageBlocked", "payload": {"reason": "no_contact"}}, 2_000)
    )
    outcomes.observe(_record("c:other-1", {"type": "MessageSent"}, 1))  # another run's
    sent, deferred, blocked = (outcomes.patients[f"c:run-{i}"] for i in (1, 2, 3))
    assert (sent.eligible_at, sent.settled_at) == (1.0, 1.5)
    assert deferred.settled_at is None and deferred.deferred == ["quiet_hours"]
    assert blocked.blocked == ["no_contact"] and blocked.settled_at == 2.0
    assert outcomes.settled() == 2 and "c:other-1" not in outcomes.patients


def test_lag_growth_is_zero_for_a_group_that_keeps_up_and_positive_for_one_that_falls_behind() -> (
    None
):
    series = LagSeries()
    for second in range(9):
        series.add(float(second), [(("a.keeps", "t"), 5), (("b.falls", "t"), 100 * second)])
    assert series.growth("a.keeps") == 0
    assert series.growth("b.falls") > 0
    assert series.peak("b.falls") == 800


def test_a_profile_names_where_the_cpu_went_and_the_projects_own_code_paths() -> None:
    collapsed = "\n".join(
        [
            "main (revisit/cli.py:1);handle (services/messenger/handlers.py:10);"
            "execute (asyncpg/x.py:3) 60",
            "main (revisit/cli.py:1);plan (services/messenger/sending.py:5);render (t.py:9) 30",
            "main (revisit/cli.py:1);run (asyncio/runners.py:1) 10",
        ]
    )
    summary = summarise(collapsed)
    assert summary.samples == 100
    assert summary.top_self[0] == ("execute (asyncpg/x.py)", 60)
    own = dict(summary.top_own)
    assert own["handle (messenger/handlers.py)"] == 60
    assert "main (revisit/cli.py)" not in own  # on every stack: says nothing
