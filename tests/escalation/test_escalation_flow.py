"""The escalation flow for real: a red flag on the broker is paged, re-paged on the controlled
clock, acknowledged and resolved through the API, and every step comes back on escalations.v1.

It starts from ``EscalationRaised`` on ``escalations.v1``: the messenger's reply classification
that raises a red flag from a patient's sandbox reply is built and tested with the messenger.
The tests in this module run in order and share one service and one case.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from shared.clock import advance_clock
from shared.events.envelope import Envelope
from shared.events.escalations import CaseType, Severity
from tests.escalation.helpers import eventually, raised_event, rows
from tests.escalation.service_harness import T0, Service, of_type

NOTE = "Spoke with the patient; photo reviewed, seen tomorrow at 9."


async def test_an_admin_puts_dermatologists_on_call_with_the_practice_manager_as_fallback(
    service: Service,
) -> None:
    admin = service.auth("admin-1", "admin")
    body = {
        "name": "On-call dermatologist",
        "time_zone": "America/New_York",
        "handoff_time": "08:00",
        "shift_days": 7,
        "anchor_date": "2026-03-02",
        "members": [{"responder_id": "dr-a"}, {"responder_id": "dr-b"}],
        "fallback_rotation_id": "practice-manager",
    }
    r = await service.client.put(
        f"/clinics/{service.clinic}/rotations/dermatologist-on-call", json=body, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["on_call"]["responder_id"] == "dr-a"
    r = await service.client.get(
        f"/clinics/{service.clinic}/rotations/dermatologist-on-call/on-call",
        headers=service.auth("nurse-1"),
    )
    chain = [t["responder_id"] for t in r.json()["escalation_chain"]]
    assert chain == ["dr-a", "dr-b", "practice-manager.duty"]


async def test_a_red_flag_on_the_topic_is_paged_within_five_seconds(service: Service) -> None:
    event = raised_event(service.clinic, at=T0)
    esc_id = event.payload.escalation_id
    service.shared.update(esc_id=esc_id, raised=event)
    await service.publish(event)
    pages = await eventually(lambda: service.sandbox_pages(esc_id), timeout=5.0)
    assert pages, "no page within 5 s of EscalationRaised"
    assert (pages[0]["action"], pages[0]["responder_id"], pages[0]["attempt"]) == (
        "trigger",
        "dr-a",
        1,
    )
    assert pages[0]["case_url"] == f"http://127.0.0.1:8005/cases/{esc_id}"
    events = await service.lifecycle(esc_id, of_type("EscalationPaged"))
    paged = [e for e in events if e.type == "EscalationPaged"]
    assert [(p.payload.responder_id, p.payload.attempt) for p in paged] == [("dr-a", 1)]
    assert paged[0].correlation_id == event.correlation_id
    assert paged[0].causation_id == event.event_id


async def test_an_unacknowledged_page_goes_to_the_next_person_then_the_fallback(
    service: Service,
) -> None:
    esc_id = service.shared["esc_id"]
    await advance_clock(service.engine, timedelta(minutes=5, seconds=1))
    pages = await eventually(lambda: _triggers(service, esc_id, 2))
    assert [p["responder_id"] for p in pages] == ["dr-a", "dr-b"]
    await advance_clock(service.engine, timedelta(minutes=5, seconds=1))
    pages = await eventually(lambda: _triggers(service, esc_id, 3))
    assert [p["responder_id"] for p in pages] == ["dr-a", "dr-b", "practice-manager.duty"]
    events = await service.lifecycle(esc_id, of_type("EscalationPaged", 3))
    attempts = [e.payload.attempt for e in events if e.type == "EscalationPaged"]
    assert attempts == [1, 2, 3]


async def _triggers(service: Service, esc_id: str, count: int) -> list[dict[str, Any]] | None:
    pages = [p for p in await service.sandbox_pages(esc_id) if p["action"] == "trigger"]
    return pages if len(pages) >= count else None


async def test_the_queue_shows_the_case_to_its_clinic_only(service: Service) -> None:
    esc_id = service.shared["esc_id"]
    r = await service.client.get(
        "/cases", params={"clinic_id": service.clinic}, headers=service.auth("nurse-1", "viewer")
    )
    [case] = [c for c in r.json()["cases"] if c["escalation_id"] == esc_id]
    assert (case["state"], case["severity"], case["attempt"]) == ("paging", "urgent", 3)
    assert case["age_minutes"] == 10
    other = service.auth("nurse-9", "operator", service.other)
    assert (await service.client.get(f"/cases/{esc_id}", headers=other)).status_code == 404
    r = await service.client.post(f"/cases/{esc_id}/acknowledge", headers=other)
    assert r.status_code == 404
    r = await service.client.get("/cases", params={"clinic_id": service.clinic}, headers=other)
    assert r.status_code == 403
    assert (await service.client.get("/cases")).status_code == 401
    r = await service.client.post(
        f"/cases/{esc_id}/acknowledge", headers=service.auth("nurse-1", "viewer")
    )
    assert r.status_code == 403


async def test_acknowledging_stops_the_repages_and_is_announced_on_the_topic(
    service: Service,
) -> None:
    esc_id = service.shared["esc_id"]
    r = await service.client.post(f"/cases/{esc_id}/acknowledge", headers=service.auth("dr-b"))
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["acknowledged_by"]) == ("acknowledged", "dr-b")
    events = await service.lifecycle(esc_id, of_type("EscalationAcknowledged"))
    [ack] = [e for e in events if e.type == "EscalationAcknowledged"]
    assert ack.payload.responder_id == "dr-b"
    timers = await rows(
        service.engine, "SELECT kind FROM {s}.timers WHERE timer_key = :e", e=esc_id
    )
    assert timers == []
    again = await service.client.post(f"/cases/{esc_id}/acknowledge", headers=service.auth("dr-a"))
    assert again.status_code == 409 and "reassign" in again.json()["detail"]


async def test_resolving_records_outcome_and_note_and_lets_outreach_resume(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    esc_id = service.shared["esc_id"]
    caplog.set_level(logging.DEBUG)
    r = await service.client.post(
        f"/cases/{esc_id}/resolve",
        headers=service.auth("dr-b"),
        json={"outcome": "answered", "note": NOTE},
    )
    assert r.status_code == 200, r.text
    case = r.json()
    assert (case["state"], case["outcome"], case["note"]) == ("resolved", "answered", NOTE)
    events = await service.lifecycle(esc_id, of_type("EscalationResolved"))
    [done] = [e for e in events if e.type == "EscalationResolved"]
    assert (done.payload.outcome, done.payload.resolved_by, done.payload.resume_outreach) == (
        "answered",
        "dr-b",
        True,
    )
    assert [e.type for e in events] == ["EscalationRaised"] + ["EscalationPaged"] * 3 + [
        "EscalationAcknowledged",
        "EscalationResolved",
    ]
    trail = {(a["actor"], a["action"]) for a in case["audit"]}
    assert {
        ("system", "raised"),
        ("system", "paged"),
        ("system", "sla_expired"),
        ("dr-b", "acknowledged"),
        ("dr-b", "resolved"),
    } <= trail
    assert all(NOTE not in json.dumps(a, default=str) for a in case["audit"])
    assert all(
        "Spoke with the patient" not in rec.getMessage() + str(rec.__dict__)
        for rec in caplog.records
    )
    r = await service.client.post(
        f"/cases/{esc_id}/resolve", headers=service.auth("dr-b"), json={"outcome": "booked"}
    )
    assert r.status_code == 409


async def test_the_service_ignores_its_own_lifecycle_events(service: Service) -> None:
    esc_id = service.shared["esc_id"]
    raised: Envelope[Any] = service.shared["raised"]
    # A later case for the same patient lands on the same partition after the lifecycle events,
    # so once it is stored the consumer has read past them.
    later = raised_event(service.clinic, at=T0)
    later = later.model_copy(update={"patient_key": raised.patient_key})
    await service.publish(later)
    stored = await eventually(
        lambda: rows(
            service.engine,
            "SELECT 1 FROM {s}.cases WHERE escalation_id = :e",
            e=later.payload.escalation_id,
        )
    )
    assert stored
    events = await service.lifecycle(esc_id, of_type("EscalationResolved"))
    own = [str(e.event_id) for e in events if e.type != "EscalationRaised"]
    seen = await rows(
        service.engine,
        "SELECT event_id::text AS id FROM {s}.inbox WHERE "
        "consumer = 'escalation.cases' AND event_id::text = ANY(:ids)",
        ids=[*own, str(raised.event_id)],
    )
    assert [s["id"] for s in seen] == [str(raised.event_id)]


async def test_the_queue_puts_the_most_severe_first_and_holds_questions_for_opening_time(
    service: Service,
) -> None:
    low = raised_event(
        service.other, case_type=CaseType.booking_failed, severity=Severity.low, at=T0
    )
    question = raised_event(
        service.other, case_type=CaseType.clinical_question, severity=Severity.high, at=T0
    )
    for event in (low, question):
        await service.publish(event)
    viewer = service.auth("desk-1", "viewer", service.other)

    async def queue() -> list[dict[str, Any]] | None:
        r = await service.client.get("/cases", params={"clinic_id": service.other}, headers=viewer)
        cases: list[dict[str, Any]] = r.json()["cases"]
        return cases if len(cases) == 2 else None

    cases = await eventually(queue)
    assert [c["severity"] for c in cases] == ["high", "low"]
    assert {c["state"] for c in cases} == {"queued"}
    # Held until 08:00 New York (13:00 UTC) Wednesday, the next opening.
    assert {c["page_at"] for c in cases} == {"2026-03-04T13:00:00Z"}


async def test_a_held_case_can_be_reassigned_and_is_paged_at_once(service: Service) -> None:
    viewer = service.auth("desk-1", "viewer", service.other)
    r = await service.client.get(
        "/cases", params={"clinic_id": service.other, "severity": "high"}, headers=viewer
    )
    [held] = r.json()["cases"]
    url = f"/cases/{held['escalation_id']}/reassign"
    operator = service.auth("rn-7", "operator", service.other)
    assert (await service.client.post(url, json={}, headers=operator)).status_code == 422
    r = await service.client.post(url, json={"rotation_id": "nurse-line"}, headers=operator)
    assert r.status_code == 200, r.text
    case = r.json()
    assert (case["state"], case["attempt"], case["responder_id"]) == (
        "paging",
        1,
        "nurse-line.duty",
    )
    assert ("rn-7", "reassigned") in {(a["actor"], a["action"]) for a in case["audit"]}
    pages = await eventually(lambda: service.sandbox_pages(held["escalation_id"], service.other))
    assert await service.sandbox_pages(held["escalation_id"]) == []  # not in the caller's clinic
    assert [(p["action"], p["responder_id"]) for p in pages] == [("trigger", "nurse-line.duty")]
    resolved = service.shared["esc_id"]
    r = await service.client.post(
        f"/cases/{resolved}/reassign", json={"responder_id": "dr-a"}, headers=service.auth("dr-b")
    )
    assert r.status_code == 409
