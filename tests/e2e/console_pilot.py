"""What happens around the pilot the console's end-to-end test runs: the EHR's records dated on
the stack's controlled clock (patients, cancellations, a booking and the patient's arrival),
the launch group chosen so that both arms have patients, and the services' APIs read to know
when the pipeline has caught up. Everything goes in through ingest and the sandbox phone, as a
practice's EHR and its patients would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from services.sequencer.domain.pilots import assign_arm
from shared.events.outreach import Arm
from tests.e2e.conftest import DevStack

PILOT_ID = "acne-spring"
HOLDOUT_SHARE = 0.4
LINE = "acne"  # a care line: outreach needs no marketing consent


def clock(stack: DevStack, *args: str) -> datetime:
    """`revisit clock ...` on the stack, as a person would move it; the clock's new "now".
    (A command, not the clock's Python API: the browser's driver owns this thread's loop.)"""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    said = subprocess.run(
        [sys.executable, "-m", "revisit", "clock", *args, "--data-dir", str(stack.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    if args[0] != "show":
        time.sleep(0.3)  # the NOTIFY reaches every service's clock
    return datetime.fromisoformat(said.split()[1])


def now_of(stack: DevStack) -> datetime:
    return clock(stack, "show")


def advance(stack: DevStack, by: timedelta) -> datetime:
    return clock(stack, "advance", "--minutes", str(by / timedelta(minutes=1)))


def _source(record_id: str, at: datetime) -> dict[str, str]:
    return {"system": "json", "record_id": record_id, "source_updated_at": at.isoformat()}


def cancelled(patient_id: str, at: datetime, line: str = LINE) -> dict[str, Any]:
    """The patient cancelled a visit of ``line`` a few minutes before ``at``."""
    appointment = f"appt-{patient_id}"
    return {
        "type": "AppointmentCancelled",
        "patient_id": patient_id,
        "payload": {
            "source": _source(appointment, at - timedelta(minutes=5)),
            "appointment_id": appointment,
            "start": (at + timedelta(days=3)).isoformat(),
            "service_line": line,
            "provider_id": "dr-1",
            "location_id": "loc-1",
            "cancelled_by": "patient",
        },
    }


def _appointment(event: str, patient_id: str, at: datetime, start: datetime) -> dict[str, Any]:
    appointment = f"rebooked-{patient_id}"
    return {
        "type": event,
        "patient_id": patient_id,
        "payload": {
            "source": _source(appointment, at),
            "appointment_id": appointment,
            "start": start.isoformat(),
            "service_line": LINE,
            "provider_id": "dr-1",
            "location_id": "loc-1",
        },
    }


def booked(patient_id: str, at: datetime) -> dict[str, Any]:
    """The patient rebooked by phone: the EHR reports the appointment (two days ahead)."""
    return _appointment("AppointmentBooked", patient_id, at, at + timedelta(days=2))


def visited(patient_id: str, at: datetime) -> dict[str, Any]:
    """The rebooked visit took place and its charges are posted (an acne visit, $110)."""
    return {
        "type": "VisitCompleted",
        "patient_id": patient_id,
        "payload": {
            "source": _source(f"visit-{patient_id}", at),
            "visit_id": f"visit-{patient_id}",
            "appointment_id": f"rebooked-{patient_id}",
            "completed_at": at.isoformat(),
            "provider_id": "dr-1",
            "location_id": "loc-1",
            "services": [
                {"code": "99213", "system": "cpt", "service_line": LINE, "charge_cents": 11000}
            ],
        },
    }


def launch_group(prefix: str, messaged: int, held_out: int) -> tuple[list[str], list[str]]:
    """Patient ids whose hashed arms (the sequencer's own rule) give both arms patients."""
    arms: dict[Arm, list[str]] = {Arm.outreach: [], Arm.holdout: []}
    wanted = {Arm.outreach: messaged, Arm.holdout: held_out}
    n = 0
    while any(len(arms[a]) < wanted[a] for a in arms):
        n += 1
        patient_id = f"{prefix}{n}"
        arm = assign_arm(PILOT_ID, f"clinic-demo:{patient_id}", HOLDOUT_SHARE)
        if len(arms[arm]) < wanted[arm]:
            arms[arm].append(patient_id)
    return arms[Arm.outreach], arms[Arm.holdout]


def read(stack: DevStack, service: str, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{stack.urls[service]}{path}",
        params=params,
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def screened(stack: DevStack) -> dict[str, int]:
    return dict(read(stack, "sequencer", f"/pilots/{PILOT_ID}/preview")["screened"])


def arms(stack: DevStack) -> dict[str, int]:
    return dict(read(stack, "sequencer", f"/pilots/{PILOT_ID}")["arms"])


def report(stack: DevStack) -> dict[str, Any]:
    found: dict[str, Any] = read(stack, "metrics", f"/reports/pilots/{PILOT_ID}") or {}
    return found


def decisions(stack: DevStack) -> list[tuple[int, str, str]]:
    found = read(stack, "sequencer", f"/pilots/{PILOT_ID}/review")["reviews"]
    return [(r["week"], r["decision"], r["reviewed_by"]) for r in found]
