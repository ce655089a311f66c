"""A pilot through the sequencer's API, on the broker, Postgres and the controlled clock.

The playbook's example cohort: patients who cancelled a cosmetic visit themselves. Week 1
holds the cohort (nobody is messaged) and the preview says who is in and why; the launch needs
the week's checklist; from week 2 the launch group fills by the filters and the hash, and then
holds the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.sequencer.domain.pilots import assign_arm
from shared.events.common import Initiator, ServiceLine
from shared.events.eligibility import MissedAppointment
from shared.events.outreach import Arm
from tests.sequencer.helpers import eligible
from tests.sequencer.service_harness import Service, eventually, running_sequencer

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
DEFINE = ["eligibility", "words", "escalation_route", "holdout"]
BY_PATIENT = MissedAppointment(cancelled_by=Initiator.patient)
BY_PRACTICE = MissedAppointment(cancelled_by=Initiator.practice)


@pytest.fixture(scope="module")
async def service(pg: Any) -> AsyncIterator[Service]:
    from revisit.embedded.broker import EmbeddedBroker
    from revisit.migrate import migrate_all

    await migrate_all(pg.dsn)
    broker = EmbeddedBroker()
    broker.start()
    try:
        async with running_sequencer(pg.dsn, broker.bootstrap, T0) as svc:
            yield svc
    finally:
        broker.stop()


async def _screened(service: Service, pid: str, patient: str) -> dict[str, Any] | None:
    r = await service.client.get(f"/pilots/{pid}/preview", headers=service.auth("viewer"))
    assert r.status_code == 200, r.text
    rows = [p for p in r.json()["patients"] if p["patient_key"] == service.key(patient)]
    return rows[0] if rows else None


async def _verdict(service: Service, pid: str, patient: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return await _screened(service, pid, patient)

    row = await eventually(found)
    assert row is not None, f"{patient} was never screened"
    return row


async def test_a_cosmetic_cancellation_pilot_holds_week_one_then_fills_its_launch_group(
    service: Service,
) -> None:
    now = T0 + timedelta(days=60)
    await service.set_time(now)
    admin = service.auth("admin")
    pid = f"cosmetic-{uuid.uuid4().hex[:6]}"
    body = {
        "pilot_id": pid,
        "clinic_id": service.clinic_id,
        "name": "Cosmetic cancellations",
        "segment": "cancelled_not_rescheduled",
        "cohort": {"service_lines": ["neurotoxin", "filler"], "cancelled_by": ["patient"]},
        "cohort_size": 4,
        "holdout_share": 0.5,
    }
    operator = service.auth()
    assert (await service.client.post("/pilots", json=body, headers=operator)).status_code == 403
    r = await service.client.post("/pilots", json={**body, "days": 7}, headers=admin)
    assert r.status_code == 422 and "days" in r.text  # nothing left after the define week
    r = await service.client.post("/pilots", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["cohort_words"] == (
        "segment cancelled_not_rescheduled; service lines: neurotoxin, filler; "
        "cancelled by: patient"
    )
    r = await service.client.get(f"/pilots/{pid}/preview", headers=service.auth("viewer"))
    assert r.json()["patients"] == [] and "screens nothing yet" in r.json()["note"]
    r = await service.client.post(f"/pilots/{pid}/start", headers=admin)
    assert (r.json()["status"], r.json()["week"], r.json()["phase"]) == ("running", 1, "define")

    # Week 1: the cohort's cancellation is held, nothing opens; a Mohs one is out of the cohort
    # and gets the practice's ordinary outreach.
    cosmetic = eligible("cnr-w1", line=ServiceLine.neurotoxin, due_at=now, missed=BY_PATIENT)
    await service.publish("w1-botox", cosmetic, now)
    await service.publish("w1-mohs", eligible("cnr-m", line=ServiceLine.mohs, due_at=now), now)
    held = await _verdict(service, pid, "w1-botox")
    assert held["verdict"] == "held" and held["arm"] is None
    assert "service line neurotoxin" in held["why"] and "cancelled by patient" in held["why"]
    assert any("nobody in the cohort is messaged in week 1" in w for w in held["why"])
    assert held["service_line"] == "neurotoxin" and held["cancellation_reason"] == "unknown"
    out = await _verdict(service, pid, "w1-mohs")
    assert out["verdict"] == "out"
    assert out["why"] == [
        "service line mohs is not one the cohort names (neurotoxin, filler)",
        "no cancelled by recorded (the cohort names patient)",
    ]
    [ordinary] = await service.watcher.wait(service.key("w1-mohs"), "SequenceStarted")
    assert ordinary.payload.pilot_id is None
    # The verdict and the (absent) sequence commit together: none opened for the held need.
    assert service.watcher.of(service.key("w1-botox")) == []

    # The launch needs the whole define checklist, and an admin.
    decide = f"/pilots/{pid}/reviews"
    r = await service.client.post(
        decide, json={"week": 1, "decision": "launch", "checklist": DEFINE}, headers=service.auth()
    )
    assert r.status_code == 403
    r = await service.client.post(
        decide, json={"week": 1, "decision": "launch", "checklist": ["eligibility"]}, headers=admin
    )
    assert r.status_code == 409
    assert "missing: words, escalation_route, holdout" in r.json()["detail"]
    r = await service.client.post(
        decide, json={"week": 2, "decision": "continue"}, headers=service.auth()
    )
    assert r.status_code == 409 and "week 2 has not begun" in r.json()["detail"]
    r = await service.client.post(
        decide,
        json={"week": 1, "decision": "launch", "checklist": DEFINE, "note": "Words approved."},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["launched_at"] == (now + timedelta(days=7)).isoformat()  # week 2 begins
    later = eligible("cnr-w1b", line=ServiceLine.filler, due_at=now, missed=BY_PATIENT)
    await service.publish("w1-filler", later, now + timedelta(hours=1))
    still = await _verdict(service, pid, "w1-filler")
    assert still["verdict"] == "held"
    assert any(f"the launch on {now + timedelta(days=7):%Y-%m-%d}" in w for w in still["why"])

    # Week 2: the launch group fills with the cohort only, in both arms, then holds the rest.
    week2 = now + timedelta(days=7, hours=1)
    await service.set_time(week2)
    names = [f"w2-{n}" for n in range(60)]
    arms = {n: assign_arm(pid, service.key(n), 0.5) for n in names}
    group = [n for n in names if arms[n] is Arm.holdout][:2]
    group += [n for n in names if arms[n] is Arm.outreach][:2]
    for n in group:
        need = eligible(f"cnr-{n}", line=ServiceLine.filler, due_at=week2, missed=BY_PATIENT)
        await service.publish(n, need, week2)
    for n in group:
        [begun] = await service.watcher.wait(service.key(n), "SequenceStarted")
        assert (begun.payload.pilot_id, begun.payload.arm) == (pid, arms[n])
        plan = begun.payload.pilot_plan
        assert plan is not None and plan.cohort.service_lines == (
            ServiceLine.neurotoxin,
            ServiceLine.filler,
        )
        assert (plan.starts_at, plan.launched_at) == (now, now + timedelta(days=7))
        if arms[n] is Arm.holdout:
            assert begun.payload.steps_planned == 0
        else:
            await service.watcher.wait(service.key(n), "SendStep")
    assert all(service.watcher.of(service.key(n), "SendStep") == [] for n in group[:2])
    by_practice = eligible("cnr-p", line=ServiceLine.filler, due_at=week2, missed=BY_PRACTICE)
    await service.publish("w2-practice", by_practice, week2)
    full = eligible("cnr-full", line=ServiceLine.neurotoxin, due_at=week2, missed=BY_PATIENT)
    await service.publish("w2-full", full, week2)
    assert (await _verdict(service, pid, "w2-practice"))["verdict"] == "out"
    [usual] = await service.watcher.wait(service.key("w2-practice"), "SequenceStarted")
    assert usual.payload.pilot_id is None
    over = await _verdict(service, pid, "w2-full")
    assert over["verdict"] == "held" and "held: the launch group is full (4)" in over["why"]
    assert service.watcher.of(service.key("w2-full")) == []

    r = await service.client.get(f"/pilots/{pid}", headers=service.auth("viewer"))
    assert (r.json()["enrolled"], r.json()["arms"]) == (4, {"outreach": 2, "holdout": 2})
    assert (r.json()["week"], r.json()["phase"]) == (2, "launch")
    r = await service.client.get(f"/pilots/{pid}/review", headers=service.auth("viewer"))
    review = r.json()
    assert review["screened"] == {"enrolled": 4, "held": 3, "out": 2, "exclusive": 0}
    [week2_figures] = review["weeks"]  # week 1 enrolled nobody: it has no figures
    assert week2_figures["week"] == 2
    assert (week2_figures["holdout"]["enrolled"], week2_figures["outreach"]["enrolled"]) == (2, 2)
    assert week2_figures["outreach"]["steps_commanded"] == 2
    assert week2_figures["holdout"]["steps_commanded"] == 0
    define, launch = review["phases"][0], review["phases"][1]
    assert [d["decision"] for d in define["decisions"]] == ["launch"]
    assert all(item["confirmed"] for item in define["checklist"])
    assert launch["current"] and launch["decisions_allowed"] == ["continue", "adjust", "stop"]
    r = await service.client.post(
        decide, json={"week": 2, "decision": "expand"}, headers=service.auth()
    )
    assert r.status_code == 409 and "continue, adjust, stop" in r.json()["detail"]
    r = await service.client.post(
        decide,
        json={"week": 2, "decision": "continue", "checklist": ["first_messages", "nope"]},
        headers=service.auth(),
    )
    assert r.status_code == 409 and "no checklist item nope" in r.json()["detail"]
    r = await service.client.post(
        decide,
        json={"week": 2, "decision": "continue", "checklist": ["first_messages"]},
        headers=service.auth(),
    )
    assert r.status_code == 201 and r.json()["status"] == "running"
    metrics = (await service.client.get("/metrics")).text
    labels = f'clinic_id="{service.clinic_id}",pilot_id="{pid}",arm="holdout"'
    assert f"revisit_sequencer_pilot_patients{{{labels}}} 2" in metrics

    # Stopping is a decision too: it closes the pilot and completes the holdouts.
    await service.set_time(now + timedelta(days=14, hours=2))
    r = await service.client.post(decide, json={"week": 3, "decision": "stop"}, headers=admin)
    assert r.status_code == 201 and r.json()["status"] == "closed"
    for n in group[:2]:
        [done] = await service.watcher.wait(service.key(n), "SequenceCompleted")
        assert done.payload.steps_sent == 0
    assert (await service.client.post(f"/pilots/{pid}/close", headers=admin)).status_code == 409
    assert (await service.client.delete(f"/pilots/{pid}", headers=admin)).status_code == 409


async def test_an_exclusive_pilot_holds_every_other_need_of_its_clinic(service: Service) -> None:
    now = T0 + timedelta(days=200)
    await service.set_time(now)
    admin = service.auth("admin")
    pid = f"only-{uuid.uuid4().hex[:6]}"
    body = {
        "pilot_id": pid,
        "clinic_id": service.clinic_id,
        "name": "Only the pilot",
        "segment": "lapsed_patient",
        "cohort_size": 10,
        "exclusive": True,
    }
    assert (await service.client.post("/pilots", json=body, headers=admin)).status_code == 201
    assert (await service.client.post(f"/pilots/{pid}/start", headers=admin)).status_code == 200
    await service.publish("ex-cnr", eligible("cnr-ex", due_at=now), now)
    await service.publish("ex-ok", eligible("cnr-ok", due_at=now), now)
    for patient in ("ex-cnr", "ex-ok"):
        row = await _verdict(service, pid, patient)
        assert row["verdict"] == "exclusive" and row["segment"] == "cancelled_not_rescheduled"
        assert row["why"] == ["held: an exclusive pilot runs, and this need is outside its cohort"]
    r = await service.client.get(f"/pilots/{pid}", headers=service.auth("viewer"))
    assert r.json()["exclusive"] is True
    r = await service.client.post(f"/pilots/{pid}/close", headers=admin)
    assert r.status_code == 200
    later = now + timedelta(hours=1)
    await service.publish("ex-after", eligible("cnr-after", due_at=later), later)
    # After the close, ordinary outreach again; before it, nothing opened for the other two.
    await service.watcher.wait(service.key("ex-after"), "SequenceStarted")
    assert service.watcher.of(service.key("ex-cnr")) == []
    assert service.watcher.of(service.key("ex-ok")) == []
