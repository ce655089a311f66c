"""The whole loop, as `make run` runs it: `revisit dev` with the synthetic practice.

A few hundred synthetic patients and three simulated weeks: the practice's EHR pushes FHIR and
HL7 (over MLLP) to ingest, the segmenter finds every kind of care gap, the sequencer and the
messenger reach patients, the patients answer, some book by text through the practice's FHIR
scheduling API, the EHR reports those bookings back and then the visits, and metrics attribute
them. The checks are the invariants a practice cares about, read from what really happened.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from shared.events.common import Segment
from simulator.catalogue import default_clinic
from tests.e2e.practice_run import Practice, simulated_practice

PATIENTS, DAYS, SEED = 300, 21, 7
CLINIC = "clinic-demo"
TX_HOURS = (9, 21)  # the sequencer's allowed hours for a Texas clinic: 09:00-21:00 local


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Practice]:
    with simulated_practice(tmp_path_factory.mktemp("revisit-sim"), PATIENTS, DAYS, SEED) as p:
        yield p


OUTREACH_SQL = """
SELECT s.patient_key, s.sent_at, s.seq FROM messenger.sandbox_messages s
JOIN messenger.outgoing o USING (message_id)
WHERE s.direction = 'outbound' AND o.kind IN ('step', 'offer') ORDER BY s.seq
"""


def test_every_segment_finds_patients_from_the_practices_records(practice: Practice) -> None:
    report = practice.get("metrics", "/reports/segments", clinic_id=CLINIC)
    eligible = {row["segment"]: row["eligible"] for row in report["rows"]}
    assert {s.value for s in Segment} <= {s for s, n in eligible.items() if n > 0}, eligible


async def test_outreach_goes_out_only_in_allowed_hours_and_within_the_caps(
    practice: Practice,
) -> None:
    zone = ZoneInfo(default_clinic().time_zone)
    sent = await practice.rows(OUTREACH_SQL)
    assert len(sent) > 50, "too little outreach to say anything"
    hours = sorted({row["sent_at"].astimezone(zone).hour for row in sent})
    assert all(TX_HOURS[0] <= h < TX_HOURS[1] for h in hours), hours
    by_patient: dict[str, list[datetime]] = defaultdict(list)
    for row in sent:
        by_patient[row["patient_key"]].append(row["sent_at"])
    for times in by_patient.values():
        for i, at in enumerate(times):
            assert sum(1 for t in times[i:] if t - at < timedelta(hours=24)) <= 1
            assert sum(1 for t in times[i:] if t - at < timedelta(days=7)) <= 3


async def test_after_stop_a_patient_gets_only_the_confirmation(practice: Practice) -> None:
    """STOP by text: one confirmation, no more texts, and the sequence that was running does
    not carry on by e-mail (a later, different need may still use e-mail)."""
    rows = await practice.rows(
        "SELECT s.patient_key, s.direction, s.channel, s.body, s.seq, o.kind, o.sequence_id "
        "FROM messenger.sandbox_messages s LEFT JOIN messenger.outgoing o USING (message_id) "
        "ORDER BY s.seq"
    )
    stopped: set[str] = set()
    running: dict[str, set[str]] = defaultdict(set)  # sequences that reached the patient
    after: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        key = row["patient_key"]
        if row["direction"] == "outbound" and key in stopped:
            after[key].append(row)
        elif row["direction"] == "outbound" and row["kind"] == "step":
            running[key].add(row["sequence_id"])
        if row["direction"] == "inbound" and row["body"].strip().upper() == "STOP":
            stopped.add(key)
    assert stopped, "no simulated patient said STOP"
    for key in stopped:
        texts = [r for r in after[key] if r["channel"] == "sms"]
        assert len(texts) <= 1 and all("unsubscribed" in r["body"] for r in texts), key
        carried_on = [
            r for r in after[key] if r["kind"] == "step" and r["sequence_id"] in running[key]
        ]
        assert not carried_on, key


def test_a_red_flag_reply_is_paged_to_a_person(practice: Practice) -> None:
    pages = practice.get("escalation", "/sandbox/pages", clinic_id=CLINIC, limit=1000)["pages"]
    assert any(p["case_type"] == "red_flag" for p in pages), {p["case_type"] for p in pages}


async def test_bookings_made_by_text_come_back_as_appointments_then_visits(
    practice: Practice,
) -> None:
    # The practice's scheduling API names the appointments it books by text "A-S…".
    records = await practice.rows(
        "SELECT kind, record_id, payload FROM segmenter.records "
        "WHERE record_id LIKE 'A-S%' OR payload->>'appointment_id' LIKE 'A-S%'"
    )
    booked = {r["record_id"] for r in records if r["kind"] == "appointment"}
    visited = {json.loads(r["payload"])["appointment_id"] for r in records if r["kind"] == "visit"}
    assert booked, "no booking made in a conversation reached the EHR and came back"
    assert visited and visited <= booked


def test_metrics_attribute_completed_visits_and_revenue_to_outreach(practice: Practice) -> None:
    funnel = practice.get("metrics", "/reports/funnel", clinic_id=CLINIC, group_by="clinic")
    [row] = funnel["rows"]
    assert row["messaged"] > 0 and row["replied"] > 0
    assert 0 < row["completed"] <= row["rebooked"] <= row["messaged"]
    assert row["revenue_cents"] > 0


def test_the_practices_staff_take_pages_and_close_cases(practice: Practice) -> None:
    closed = practice.get("escalation", "/cases", clinic_id=CLINIC, state="resolved", limit=500)
    assert closed["cases"], "no case was closed"
    assert all(c["acknowledged_at"] for c in closed["cases"])
    times = practice.get("metrics", "/reports/escalations", clinic_id=CLINIC, group_by="clinic")
    [row] = times["rows"]
    assert row["minutes_to_ack_median"] is not None and row["minutes_to_ack_median"] >= 0
