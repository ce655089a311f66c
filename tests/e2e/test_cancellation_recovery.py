"""Cancellation recovery as the playbook says, through the real processes of `revisit dev`.

A patient cancels an acne follow-up with their own provider. The first message, inside allowed
hours, confirms the cancellation with its date, names the provider and the service, and asks
whether they have a question; "yes please" brings up to three times with that provider, saying
so; choosing one books it in the practice's scheduling API (the simulator's FHIR server); the
EHR's booking, coming back through ingest, ends the sequence, and nothing more is sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import DevStack, EhrScheduling
from tests.e2e.test_walking_skeleton import CLINIC, move_clock, post, sandbox, wait_until

pytestmark = pytest.mark.e2e

# A Tuesday morning in Texas (09:00 in Chicago), before the walking skeleton's days.
TUESDAY = datetime(2026, 2, 17, 15, 0, tzinfo=UTC)
CHICAGO = ZoneInfo("America/Chicago")
PATIENT = "p-cr-1"
KEY = f"{CLINIC}:{PATIENT}"
PROVIDER, PROVIDER_NAME = "dr-nair", "Dr. Priya Nair"  # sees acne at the Northside office
APPOINTMENT_START = "2026-02-20T16:00:00Z"  # Friday 10:00 in Chicago


def _source(record_id: str, at: str) -> dict[str, Any]:
    return {"system": "json", "record_id": record_id, "source_updated_at": at}


def patient() -> dict[str, Any]:
    return {
        "type": "PatientUpserted",
        "patient_id": PATIENT,
        "payload": {
            "source": _source(PATIENT, "2026-02-10T10:00:00Z"),
            "given_name": "Ana",
            "preferred_language": "en",
            "time_zone": "America/Chicago",
            "home_state": "TX",
            "contacts": [{"kind": "phone", "value": "+15555550777", "use": "mobile", "rank": 1}],
        },
    }


def cancelled() -> dict[str, Any]:
    return {
        "type": "AppointmentCancelled",
        "patient_id": PATIENT,
        "payload": {
            "source": _source("appt-cr-1", "2026-02-17T14:55:00Z"),
            "appointment_id": "appt-cr-1",
            "start": APPOINTMENT_START,
            "service_line": "acne",
            "provider_id": PROVIDER,
            "location_id": "loc-northside",
            "cancelled_by": "patient",
        },
    }


def booked_in_the_ehr(appointment: Any) -> dict[str, Any]:
    """The EHR's own record of the appointment booked by text, as its feed sends it."""
    return {
        "type": "AppointmentBooked",
        "patient_id": PATIENT,
        "payload": {
            "source": _source(appointment.appointment_id, datetime.now(UTC).isoformat()),
            "appointment_id": appointment.appointment_id,
            "start": appointment.start.isoformat(),
            "service_line": appointment.service_line,
            "provider_id": appointment.provider_id,
            "location_id": appointment.location_id,
        },
    }


def admin(stack: DevStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.admin_token}"}


def outbound(stack: DevStack) -> list[dict[str, Any]]:
    return [m for m in sandbox(stack, PATIENT) if m.get("direction", "outbound") == "outbound"]


def reply(stack: DevStack, body: str) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.urls['messenger']}/sandbox/reply",
        json={"clinic_id": CLINIC, "patient_key": KEY, "body": body},
        headers=admin(stack),
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def previewed(stack: DevStack) -> dict[str, Any] | None:
    """The first message the segment preview says this patient would receive."""
    found = httpx.get(
        f"{stack.urls['segmenter']}/segments/cancelled_not_rescheduled/preview",
        params={"clinic_id": CLINIC, "days": 1},
        headers=admin(stack),
    ).json()
    mine = [p for p in found["patients"] if p["patient_key"] == KEY]
    messages = mine[0].get("messages") if mine else None
    return messages[0] if messages else None


def sequence_state(stack: DevStack) -> list[tuple[str, str | None]]:
    async def query() -> list[tuple[str, str | None]]:
        conn = await asyncpg.connect(stack.database_url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch(
                "SELECT state, stop_reason FROM sequencer.sequences WHERE patient_key = $1", KEY
            )
        finally:
            await conn.close()
        return [(r["state"], r["stop_reason"]) for r in rows]

    return asyncio.run(query())


def test_a_cancelled_acne_follow_up_is_rebooked_with_the_same_provider_by_text(
    dev_stack: DevStack, ehr_scheduling: EhrScheduling
) -> None:
    stack = dev_stack
    move_clock(stack, to=TUESDAY)
    practice = {
        "name": "Bluebonnet Dermatology",
        "phone": "+15125550100",
        "time_zone": "America/Chicago",
    }
    messenger = stack.urls["messenger"]
    assert httpx.put(
        f"{messenger}/practices/{CLINIC}", json=practice, headers=admin(stack)
    ).is_success
    for provider_id, name in ((PROVIDER, PROVIDER_NAME), ("dr-herrera", "Dr. Tomás Herrera")):
        named = httpx.put(
            f"{messenger}/practices/{CLINIC}/providers/{provider_id}",
            json={"display_name": name},
            headers=admin(stack),
        )
        assert named.is_success, named.text
    assert post(stack, patient(), cancelled()).status_code == 202

    # 0. Before it opens, the segment preview shows the words the patient would receive.
    assert wait_until(lambda: previewed(stack) is not None, timeout=30), stack.log_tail()
    would = previewed(stack)
    assert would is not None and would["step"] == 1 and would["words"]["would_send"]
    move_clock(stack, by=timedelta(hours=2, minutes=1))  # the need opens 2 h after

    # 1. The first message confirms the cancellation, with whom and when, and asks.
    assert wait_until(lambda: outbound(stack)), stack.log_tail()
    [first] = outbound(stack)
    body = first["body"]
    assert body.startswith("Hi Ana, this is Bluebonnet Dermatology.")
    assert f"Your skin care visit with {PROVIDER_NAME} on February 20 was cancelled." in body
    assert f"Would you like a new time with {PROVIDER_NAME} for the same visit?" in body
    assert "Do you have a question?" in body and "Reply STOP to opt out." in body
    sent_at = datetime.fromisoformat(str(first["sent_at"])).astimezone(CHICAGO)
    assert 9 <= sent_at.hour < 21  # Texas's allowed hours, on the patient's clock
    assert body == would["words"]["body"]  # the preview showed exactly these words
    # The sequencer's preview shows the next step's words (by text: the patient has no e-mail).
    upcoming = httpx.get(
        f"{stack.urls['sequencer']}/preview",
        params={"clinic_id": CLINIC, "days": 3},
        headers=admin(stack),
    ).json()
    [second] = [s for s in upcoming["steps"] if s["patient_key"] == KEY]
    assert second["step"] == 2 and second["words"]["channel"] == "sms"
    assert "Not now? Reply LATER and the month" in second["words"]["body"]

    # 2. "Yes please": up to three times, with that provider, saying so.
    assert reply(stack, "Yes please")["understood_as"] == "book"
    assert wait_until(lambda: len(outbound(stack)) >= 2, timeout=30), stack.log_tail()
    offer = outbound(stack)[1]["body"]
    assert offer.startswith(f"{PROVIDER_NAME} has these times for your skin care visit: 1) ")
    times = re.findall(r"(?<![\d:])([1-9])\) ", offer)
    assert 1 <= len(times) <= 3 and "Reply 1, 2 or 3" in offer

    # 3. Choosing one books it in the practice's scheduling API, with that provider.
    reply(stack, "2")
    assert wait_until(lambda: ehr_scheduling.booked, timeout=30), stack.log_tail()
    [appointment] = ehr_scheduling.booked
    assert appointment.provider_id == PROVIDER and appointment.patient_id == PATIENT
    assert wait_until(lambda: len(outbound(stack)) >= 3, timeout=30), stack.log_tail()
    assert "We have requested" in outbound(stack)[2]["body"]

    # 4. The EHR's booking comes back through ingest and ends the sequence ...
    assert post(stack, booked_in_the_ehr(appointment)).status_code == 202
    assert wait_until(lambda: ("stopped", "booked") in sequence_state(stack), timeout=30), (
        sequence_state(stack),
        stack.log_tail(),
    )
    # ... and nothing more is sent, however long we wait.
    sent = len(outbound(stack))
    for _ in range(3):
        move_clock(stack, by=timedelta(days=3))
        time.sleep(1.0)
    assert len(outbound(stack)) == sent, outbound(stack)[sent:]
