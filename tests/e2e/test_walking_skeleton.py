"""The walking skeleton, through real processes, a real broker and a real database.

A cancellation posted to ingest crosses every service and ends as an SMS in the sandbox, counted
on the metrics service's /metrics, under one trace. The same path proves the send-time safety
rules: nothing goes out in the patient's quiet hours or after an opt-out, and a message sent twice
to ingest is one message.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth import issue_staff_token
from shared.clock import advance_clock, set_clock
from tests.e2e.conftest import DevStack

pytestmark = pytest.mark.e2e

CLINIC = "clinic-demo"
# 15:00 UTC on a Tuesday: 10:00 in New York, 09:00 in Chicago (inside allowed hours),
# and 05:00 the next morning on Kiritimati (UTC+14, inside quiet hours).
DAYTIME = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
FLOW_TIMEOUT_S = 20.0
# cancelled_not_rescheduled opens 2 h after the cancellation if nothing replaced it.
CANCELLATION_GRACE = timedelta(hours=2, minutes=1)
TEST_DAYS = (
    "test_a_cancellation_becomes_one_sms_in_the_sandbox_under_one_trace",
    "test_metrics_count_the_funnel_on_the_metrics_endpoint",
    "test_the_same_message_posted_twice_sends_one_sms",
    "test_nothing_is_sent_in_the_patients_quiet_hours",
    "test_nothing_is_sent_after_the_patient_opted_out",
    "test_every_route_but_health_refuses_a_missing_or_foreign_credential",
    "test_a_bad_submission_is_refused_whole_with_the_path_of_each_problem",
)


def patient(patient_id: str, *, tz: str = "America/Chicago", phone: str) -> dict[str, Any]:
    return {
        "type": "PatientUpserted",
        "patient_id": patient_id,
        "payload": {
            "source": {
                "system": "json",
                "record_id": patient_id,
                "source_updated_at": "2026-02-20T10:00:00Z",
            },
            "given_name": "Ana",
            "preferred_language": "en",
            "time_zone": tz,
            "contacts": [{"kind": "phone", "value": phone, "use": "mobile", "rank": 1}],
        },
    }


def cancellation(patient_id: str, appointment_id: str) -> dict[str, Any]:
    return {
        "type": "AppointmentCancelled",
        "patient_id": patient_id,
        "payload": {
            "source": {
                "system": "json",
                "record_id": appointment_id,
                "source_updated_at": "2026-03-03T14:55:00Z",
            },
            "appointment_id": appointment_id,
            "start": "2026-03-06T15:00:00Z",
            "service_line": "skin_check",
            "provider_id": "dr-1",
            "location_id": "loc-1",
            "cancelled_by": "patient",
        },
    }


def post(stack: DevStack, *events: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": stack.api_key}
    if key:
        headers["Idempotency-Key"] = key
    return httpx.post(
        f"{stack.urls['ingest']}/events", json={"events": list(events)}, headers=headers
    )


def sandbox(stack: DevStack, patient_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.urls['messenger']}/sandbox/messages",
        params={"patient_key": f"{CLINIC}:{patient_id}"},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def funnel(stack: DevStack, step: str) -> float:
    text = httpx.get(f"{stack.urls['metrics']}/metrics").text
    match = re.search(
        rf'^revisit_funnel_total{{clinic_id="{CLINIC}",step="{step}"}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def wait_until(predicate: Any, timeout: float = FLOW_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def move_clock(stack: DevStack, *, to: datetime | None = None, by: timedelta | None = None) -> None:
    """Every service follows the shared clock; a NOTIFY tells them it moved."""

    async def move() -> None:
        engine = create_async_engine(stack.database_url)
        try:
            if to is not None:
                await set_clock(engine, to, rate=1.0)
            if by is not None:
                await advance_clock(engine, by)
        finally:
            await engine.dispose()

    asyncio.run(move())
    time.sleep(0.3)


@pytest.fixture
def daytime(dev_stack: DevStack, request: pytest.FixtureRequest) -> DevStack:
    """A fresh weekday morning for each test (10:00 New York), so tests never share a day."""
    index = list(TEST_DAYS).index(request.node.name.split("[")[0])
    move_clock(dev_stack, to=DAYTIME + timedelta(days=index))
    return dev_stack


def cancel_and_wait_for_the_segment(stack: DevStack, patient_id: str, **kw: Any) -> str:
    """Post a cancellation; the need opens when the segment's grace period (2 h) has passed."""
    response = post(stack, cancellation(patient_id, f"appt-{patient_id}"), **kw)
    assert response.status_code == 202, response.text
    move_clock(stack, by=CANCELLATION_GRACE)
    trace_id: str = response.json()["trace_id"]
    return trace_id


def test_a_cancellation_becomes_one_sms_in_the_sandbox_under_one_trace(daytime: DevStack) -> None:
    assert post(daytime, patient("p-100", phone="+15555550100")).status_code == 202
    trace_id = cancel_and_wait_for_the_segment(daytime, "p-100")
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    due = time.monotonic()

    assert wait_until(lambda: sandbox(daytime, "p-100")), daytime.log_tail()
    print(f"skeleton flow: need due -> sandbox SMS in {time.monotonic() - due:.2f} s")
    [message] = sandbox(daytime, "p-100")
    assert message["channel"] == "sms"
    assert message["address"] == "+15555550100"
    assert "Ana" in message["body"]
    assert "STOP" in message["body"]  # a first contact always says how to opt out
    assert message["trace_id"] == trace_id  # one trace from ingest to messenger


def test_metrics_count_the_funnel_on_the_metrics_endpoint(daytime: DevStack) -> None:
    assert wait_until(lambda: funnel(daytime, "sent") >= 1), daytime.log_tail()
    assert funnel(daytime, "eligible") >= 1
    assert funnel(daytime, "sequence_started") >= 1


def test_the_same_message_posted_twice_sends_one_sms(daytime: DevStack) -> None:
    post(daytime, patient("p-200", phone="+15555550200"))
    first = post(daytime, cancellation("p-200", "appt-p-200"), key="ehr-msg-200")
    again = post(daytime, cancellation("p-200", "appt-p-200"), key="ehr-msg-200")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_ids"] == first.json()["event_ids"]
    move_clock(daytime, by=CANCELLATION_GRACE)
    assert wait_until(lambda: sandbox(daytime, "p-200")), daytime.log_tail()
    time.sleep(2.0)  # time enough for a second message, if one were coming
    assert len(sandbox(daytime, "p-200")) == 1


def test_nothing_is_sent_in_the_patients_quiet_hours(daytime: DevStack) -> None:
    # Kiritimati is UTC+14: when the need opens it is 07:01 there, before allowed hours.
    post(daytime, patient("p-300", tz="Pacific/Kiritimati", phone="+15555550300"))
    cancel_and_wait_for_the_segment(daytime, "p-300")
    time.sleep(3.0)
    assert sandbox(daytime, "p-300") == []
    move_clock(daytime, by=timedelta(hours=1))  # 08:01 on Kiritimati: the step may go
    assert wait_until(lambda: sandbox(daytime, "p-300")), daytime.log_tail()
    [message] = sandbox(daytime, "p-300")
    assert message["address"] == "+15555550300"


def test_nothing_is_sent_after_the_patient_opted_out(daytime: DevStack) -> None:
    opt_out = {
        "type": "ConsentChanged",
        "patient_id": "p-400",
        "payload": {
            "source": {
                "system": "json",
                "record_id": "consent-400",
                "source_updated_at": "2026-03-01T10:00:00Z",
            },
            "purpose": "care",
            "channel": "sms",
            "status": "revoked",
        },
    }
    assert post(daytime, patient("p-400", phone="+15555550400"), opt_out).status_code == 202
    cancel_and_wait_for_the_segment(daytime, "p-400")
    # The patient who did not opt out, handled in the same minute, gets the message ...
    post(daytime, patient("p-401", phone="+15555550401"))
    cancel_and_wait_for_the_segment(daytime, "p-401")
    assert wait_until(lambda: sandbox(daytime, "p-401")), daytime.log_tail()
    # ... and the one who did, never.
    time.sleep(1.0)
    assert sandbox(daytime, "p-400") == []


def test_every_route_but_health_refuses_a_missing_or_foreign_credential(
    daytime: DevStack,
) -> None:
    ingest, messenger = daytime.urls["ingest"], daytime.urls["messenger"]
    assert httpx.get(f"{ingest}/healthz").status_code == 200
    no_key = httpx.post(f"{ingest}/events", json={"events": []})
    assert no_key.status_code == 401
    assert "missing credentials" in no_key.json()["detail"]
    other_clinic = issue_staff_token(
        daytime.jwt_secret,
        subject="nurse-elsewhere",
        role="viewer",
        clinics=["clinic-other"],
        ttl=timedelta(minutes=5),
    )
    refused = httpx.get(
        f"{messenger}/sandbox/messages",
        params={"patient_key": f"{CLINIC}:p-100"},
        headers={"Authorization": f"Bearer {other_clinic}"},
    )
    assert refused.status_code == 403
    assert "p-100" not in refused.text and "+1555" not in refused.text
    wrong_clinic = post(daytime, {**cancellation("p-1", "a-1"), "clinic_id": "clinic-other"})
    assert wrong_clinic.status_code == 422
    assert wrong_clinic.json()["detail"][0]["loc"] == "events[0].clinic_id"


def test_a_bad_submission_is_refused_whole_with_the_path_of_each_problem(
    daytime: DevStack,
) -> None:
    bad = cancellation("p-500", "appt-500")
    bad["payload"]["start"] = "next tuesday"
    response = post(daytime, patient("p-500", phone="+15555550500"), bad)
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert locs == ["events[1].payload.start"]
    assert "next tuesday" not in response.text  # values are never echoed
    time.sleep(1.0)
    assert sandbox(daytime, "p-500") == []


def test_ctrl_c_stops_every_process_within_ten_seconds(dev_stack: DevStack) -> None:
    family = [dev_stack.process.pid] + [
        c.pid for c in psutil.Process(dev_stack.process.pid).children(recursive=True)
    ]
    assert len(family) >= 8  # supervisor, postgres, broker, six services
    started = time.monotonic()
    dev_stack.process.send_signal(signal.SIGINT)
    code = dev_stack.process.wait(timeout=15)
    took = time.monotonic() - started
    assert code == 0, dev_stack.log_tail()
    assert took < 10.0
    survivors = [pid for pid in family if psutil.pid_exists(pid) and _running(pid)]
    assert survivors == []


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
