"""The sequencer for real: the broker, Postgres and the controlled clock.

One service for the module. The first test runs a whole four-step cancellation-recovery
sequence over 14 simulated days, with a quiet-hours deferral reported by the messenger; the
others drive escalations, opt-outs, staff actions, the preview and the ops API's scope rules.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.sequencer.domain.rules import AllowedHours, is_allowed
from shared.events.common import Channel, Purpose, Segment
from shared.events.escalations import (
    CaseType,
    EscalationRaised,
    EscalationResolved,
    Outcome,
    Severity,
)
from shared.events.messages import (
    BlockReason,
    ConsentScope,
    MessageBlocked,
    MessageSent,
    OptedOut,
    RecordedVia,
)
from shared.events.outreach import StopReason
from tests.sequencer.helpers import eligible
from tests.sequencer.service_harness import Service, eventually, running_sequencer

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
async def service(pg: Any) -> AsyncIterator[Service]:
    from revisit.embedded.broker import EmbeddedBroker
    from revisit.migrate import migrate_all

    await migrate_all(pg.dsn)
    # A broker of its own: the session's broker holds every earlier test's events on the four
    # topics this service reads from the beginning, and the assertions here wait on its own.
    broker = EmbeddedBroker()
    broker.start()
    try:
        async with running_sequencer(pg.dsn, broker.bootstrap, T0) as svc:
            yield svc
    finally:
        broker.stop()


async def _sequence(service: Service, sequence_id: str) -> dict[str, Any]:
    r = await service.client.get(f"/sequences/{sequence_id}", headers=service.auth("viewer"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_whole_four_step_sequence_runs_over_fourteen_simulated_days(
    service: Service,
) -> None:
    key = service.key("p-1")
    trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    elig = await service.publish(
        "p-1", eligible("cnr-1", due_at=T0), T0, headers={"traceparent": trace}
    )
    [cmd1] = await service.watcher.wait(key, "SendStep")
    sid = cmd1.payload.sequence_id
    assert (cmd1.payload.step, cmd1.payload.template_key) == (1, "cancellation_recovery.1")
    assert cmd1.correlation_id == elig.correlation_id  # commanded by its timer, same story
    [begun] = service.watcher.of(key, "SequenceStarted")
    assert (begun.payload.workflow_key, begun.payload.steps_planned) == ("cancellation_recovery", 4)
    assert service.watcher.headers_of(cmd1.event_id)["traceparent"][3:35] == trace[3:35]
    await service.publish(
        "p-1",
        MessageSent(
            message_id="m-1",
            sequence_id=sid,
            step=1,
            channel=Channel.sms,
            template_key="cancellation_recovery.1",
            purpose=Purpose.care,
        ),
        T0,
    )

    # Day by day to each step's due time, as the timers would see it.
    sent: list[tuple[int, datetime]] = [(1, T0)]
    deferred = False
    for _ in range(8):
        seq = await _sequence(service, sid)
        if seq["next_due"] is None:
            break
        due = datetime.fromisoformat(seq["next_due"])
        await service.set_time(due)
        step = seq["next_step"]
        commands = await service.watcher.wait(key, "SendStep", len(sent) + 1)
        latest = commands[-1]
        assert latest.payload.step == step
        # The trace continues through every timer, from the eligibility to the last step.
        assert service.watcher.headers_of(latest.event_id)["traceparent"][3:35] == trace[3:35]
        sent.append((step, due))
        if step == 2 and not deferred:
            # The messenger refuses it for quiet hours (the patient moved zone): try at 08:00.
            deferred = True
            retry = datetime(2026, 3, 6, 13, 0, tzinfo=UTC)
            await service.publish(
                "p-1",
                MessageBlocked(
                    sequence_id=sid,
                    step=2,
                    channel=Channel.email,
                    reason=BlockReason.quiet_hours,
                    retry_after=retry,
                ),
                due,
                # The messenger reports inside the trace of the command it refused.
                headers=service.watcher.headers_of(latest.event_id),
            )
            moved = await eventually(lambda at=retry: _due_is(service, sid, at), timeout=10)
            assert moved, str(await _sequence(service, sid))
    assert [s for s, _ in sent] == [1, 2, 2, 3, 4]
    assert sent[2][1] == datetime(2026, 3, 6, 13, 0, tzinfo=UTC)
    assert all(is_allowed(at, NY, AllowedHours()) for _, at in sent)
    assert sent[-1][1] - T0 < timedelta(days=14)  # four steps inside 14 days
    # The last step leaves 72 hours for replies, then the sequence completes.
    await service.set_time(T0 + timedelta(days=16))
    [done] = await service.watcher.wait(key, "SequenceCompleted")
    assert done.payload.steps_sent == 4
    commands = service.watcher.of(key, "SendStep")
    assert {c.payload.idempotency_key for c in commands} == {f"{sid}:{n}" for n in (1, 2, 3, 4)}
    final = await _sequence(service, sid)
    assert final["state"] == "completed"
    assert [s["status"] for s in final["steps"]] == ["sent", "commanded", "commanded", "commanded"]
    assert "message_sent" in [a["kind"] for a in final["activity"]]


async def _due_is(service: Service, sid: str, at: datetime) -> bool:
    seq = await _sequence(service, sid)
    return seq["next_step"] == 2 and seq["next_due"] == at.isoformat()


async def test_an_escalation_pauses_the_patient_and_its_resolution_resumes(
    service: Service,
) -> None:
    now = T0 + timedelta(days=20)
    await service.set_time(now)
    key = service.key("p-2")
    await service.publish("p-2", eligible("cnr-2", due_at=now), now)
    [cmd] = await service.watcher.wait(key, "SendStep")
    await service.publish(
        "p-2",
        EscalationRaised(
            escalation_id="esc-p2",
            case_type=CaseType.clinical_question,
            severity=Severity.high,
            summary="Patient asked a clinical question",
            sequence_id=cmd.payload.sequence_id,
        ),
        now,
    )
    waiting = await eventually(lambda: _waiting(service, cmd.payload.sequence_id))
    assert waiting
    await service.set_time(now + timedelta(days=5))
    assert len(service.watcher.of(key, "SendStep")) == 1
    await service.publish(
        "p-2",
        EscalationResolved(
            escalation_id="esc-p2",
            outcome=Outcome.answered,
            resolved_by="nurse-1",
            resume_outreach=True,
        ),
        now + timedelta(days=5),
    )
    second = await service.watcher.wait(key, "SendStep", 2)
    assert second[-1].payload.step == 2


async def _waiting(service: Service, sid: str) -> bool:
    return bool((await _sequence(service, sid))["waiting_for_pause_to_lift"])


async def test_an_opt_out_stops_the_sequence_and_cancels_pending_sends(service: Service) -> None:
    now = T0 + timedelta(days=30)
    await service.set_time(now)
    key = service.key("p-3")
    await service.publish("p-3", eligible("cnr-3", due_at=now), now)
    [cmd] = await service.watcher.wait(key, "SendStep")
    await service.publish(
        "p-3",
        OptedOut(
            channel=None,
            scope=ConsentScope.all,
            recorded_via=RecordedVia.reply_keyword,
            source_message_id="in-3",
        ),
        now,
    )
    [stopped] = await service.watcher.wait(key, "SequenceStopped")
    [cancel] = await service.watcher.wait(key, "CancelPendingSends")
    assert stopped.payload.reason is cancel.payload.reason is StopReason.opted_out
    assert cancel.payload.sequence_id == cmd.payload.sequence_id


async def test_staff_pause_resume_and_stop_a_patients_outreach(service: Service) -> None:
    now = T0 + timedelta(days=40)
    await service.set_time(now)
    key = service.key("p-4")
    await service.publish("p-4", eligible("cnr-4", due_at=now), now)
    await service.watcher.wait(key, "SendStep")
    viewer = await service.client.post(f"/patients/{key}/pause", headers=service.auth("viewer"))
    assert viewer.status_code == 403
    r = await service.client.post(f"/patients/{key}/pause", headers=service.auth("operator"))
    assert r.status_code == 200 and r.json()["paused_by_staff"] is True
    await service.set_time(now + timedelta(days=3))
    assert len(service.watcher.of(key, "SendStep")) == 1
    r = await service.client.post(f"/patients/{key}/resume", headers=service.auth("operator"))
    assert r.status_code == 200
    await service.watcher.wait(key, "SendStep", 2)
    r = await service.client.post(f"/patients/{key}/stop", headers=service.auth("operator"))
    assert r.status_code == 200
    [stopped] = await service.watcher.wait(key, "SequenceStopped")
    assert stopped.payload.reason is StopReason.manual
    outreach = await service.client.get(f"/patients/{key}/outreach", headers=service.auth("viewer"))
    body = outreach.json()
    assert body["sequences"][0]["state"] == "stopped"
    assert body["sequences"][0]["stop_reason"] == "manual"
    assert [s["step"] for s in body["sequences"][0]["steps"]][:2] == [1, 2]


async def test_the_preview_lists_who_gets_which_step_when_and_why(service: Service) -> None:
    now = T0 + timedelta(days=50)
    await service.set_time(now)
    key = service.key("p-5")
    await service.publish("p-5", eligible("fu-5", Segment.follow_up_not_booked, due_at=now), now)
    await service.watcher.wait(key, "SendStep")
    r = await service.client.get(
        "/preview",
        params={"clinic_id": service.clinic_id, "days": 8},
        headers=service.auth("viewer"),
    )
    assert r.status_code == 200, r.text
    mine = [s for s in r.json()["steps"] if s["patient_key"] == key]
    assert [s["step"] for s in mine] == [2, 3]  # +3, then +4 days: both inside 8 days
    assert mine[0]["template_key"] == "skin_cancer_surveillance.2"
    assert "remove friction" in mine[0]["why"] and "America/New_York" in mine[0]["why"]
    assert "+1" not in r.text  # patient keys only, never a contact


async def test_lists_filter_by_segment_and_state(service: Service) -> None:
    r = await service.client.get(
        "/sequences",
        params={
            "clinic_id": service.clinic_id,
            "segment": "follow_up_not_booked",
            "state": "active",
            "steps": True,
        },
        headers=service.auth("viewer"),
    )
    assert r.status_code == 200
    listed = r.json()["sequences"]
    assert [s["patient_key"] for s in listed] == [service.key("p-5")]
    assert listed[0]["steps"][0]["status"] == "commanded"


async def test_a_credential_for_another_clinic_sees_nothing_of_this_one(service: Service) -> None:
    other = service.auth("admin", ["clinic-elsewhere"])
    key = service.key("p-1")
    assert (await service.client.get(f"/patients/{key}/outreach", headers=other)).status_code == 403
    r = await service.client.get("/sequences", params={"patient_key": key}, headers=other)
    assert r.status_code == 403 and key not in r.text
    sid = service.watcher.of(key, "SendStep")[0].payload.sequence_id
    r = await service.client.get(f"/sequences/{sid}", headers=other)
    assert r.status_code == 404  # the same answer as for a sequence that does not exist
    assert (
        await service.client.get("/preview", params={"clinic_id": service.clinic_id})
    ).status_code == 401


async def test_admins_set_clinic_rules_and_workflows(service: Service) -> None:
    admin = service.auth("admin")
    r = await service.client.put(
        f"/clinics/{service.clinic_id}/rules",
        json={"state": "FL", "time_zone": "America/Chicago", "per_week": 2},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    effective = r.json()["effective"]
    assert (effective["allowed_until"], effective["time_zone"], effective["per_week"]) == (
        "20:00",
        "America/Chicago",
        2,
    )
    assert (
        await service.client.put(
            f"/clinics/{service.clinic_id}/rules",
            json={"per_day": 1},
            headers=service.auth("operator"),
        )
    ).status_code == 403
    # Hours a state's could never meet are refused, naming the state: its patients could never
    # be messaged.
    late = await service.client.put(
        f"/clinics/{service.clinic_id}/rules",
        json={"allowed_from": "20:30", "allowed_until": "21:00"},
        headers=admin,
    )
    assert late.status_code == 422
    assert "FL" in late.json()["detail"] and "could never be messaged" in late.json()["detail"]
    r = await service.client.get(
        "/workflows", params={"clinic_id": service.clinic_id}, headers=service.auth("viewer")
    )
    assert len(r.json()["workflows"]) == 10
    body = {
        "title": "Laser series, e-mail first",
        "routes": [{"segment": "series_incomplete", "service_lines": ["laser"]}],
        "steps": [
            {"delay_days": 0, "channel": "email", "fallback": "sms", "tone": "supportive"},
            {"delay_days": 4, "channel": "email", "tone": "supportive"},
        ],
    }
    r = await service.client.put(
        "/workflows/laser_series",
        params={"clinic_id": service.clinic_id},
        json=body,
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert [s["template_key"] for s in r.json()["steps"]] == ["laser_series.1", "laser_series.2"]
    everyone = await service.client.put(
        "/workflows/laser_series", params={"clinic_id": "*"}, json=body, headers=admin
    )
    assert everyone.status_code == 403  # this admin covers one clinic, not every clinic
    bad = {**body, "steps": body["steps"] * 3}
    r = await service.client.put(
        "/workflows/laser_series",
        params={"clinic_id": service.clinic_id},
        json=bad,
        headers=admin,
    )
    assert r.status_code == 422
    r = await service.client.delete(
        "/workflows/laser_series", params={"clinic_id": service.clinic_id}, headers=admin
    )
    assert r.status_code == 200


async def test_the_first_steps_read_a_page_at_a_time_are_the_whole_previews_first(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.sequencer.api import previews as api

    now = T0 + timedelta(days=50, hours=2)
    await service.set_time(now)
    # Step 1 goes now, steps 2 and 3 in 3 and 7 days: the third patient's step 2 comes before
    # the first one's step 3, so reading two sequences is not enough for three steps.
    for n, hours in ((6, 0), (7, 5), (8, 6)):
        at = now + timedelta(hours=hours)
        await service.set_time(at)
        patient = f"p-{n}"
        await service.publish(
            patient, eligible(f"fu-{n}", Segment.follow_up_not_booked, due_at=at), at
        )
        await service.watcher.wait(service.key(patient), "SendStep")
    params: dict[str, Any] = {"clinic_id": service.clinic_id, "days": 8}
    viewer = service.auth("viewer")
    whole = (await service.client.get("/preview", params=params, headers=viewer)).json()
    assert len(whole["steps"]) >= 6
    monkeypatch.setattr(api, "PREVIEW_PAGE", 1)  # one sequence a page: the paging is exercised
    for limit in (1, 3):
        first = await service.client.get(
            "/preview", params={**params, "limit": limit}, headers=viewer
        )
        assert first.json()["steps"] == whole["steps"][:limit]
