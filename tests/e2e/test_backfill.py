"""`revisit backfill` against the real stack: a small practice history loaded with outreach
held, interrupted and resumed, then released: the recent cancellation is messaged, the one from
three years ago is not, the broken record is refused alone and named in the report."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from revisit import backfill
from tests.e2e.conftest import DevStack
from tests.e2e.test_walking_skeleton import CLINIC, move_clock, sandbox, wait_until

pytestmark = pytest.mark.e2e
NOW = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)  # a Tuesday: 10:00 in Chicago


def _patient(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"versionId": "1", "lastUpdated": "2023-01-05T10:00:00Z"},
        "name": [{"use": "usual", "given": ["Ana"], "family": "Test"}],
        "telecom": [{"system": "phone", "value": "+15555550142", "use": "mobile"}],
        "address": [{"state": "TX", "country": "US"}],
        "communication": [{"language": {"coding": [{"code": "en"}]}, "preferred": True}],
    }


def _cancelled(aid: str, pid: str, start: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": aid,
        "meta": {"versionId": "2", "lastUpdated": (start - timedelta(days=3)).isoformat()},
        "status": "cancelled",
        "cancelationReason": {"coding": [{"code": "pat"}]},
        "serviceType": [
            {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "96904"}]}
        ],
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "participant": [
            {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
        ],
    }


def _history(folder: Path, run: str) -> tuple[str, str]:
    old, recent = f"{run}-old", f"{run}-recent"
    patients = [_patient(p) for p in (old, recent, f"{run}-quiet")]
    (folder / "Patient.ndjson").write_text("\n".join(json.dumps(p) for p in patients) + "\n")
    appointments = [
        _cancelled(f"{run}-a1", old, NOW - timedelta(days=3 * 365)),
        _cancelled(f"{run}-a2", recent, NOW + timedelta(days=1)),
        {"resourceType": "Appointment", "id": f"{run}-bad", "status": "cancelled"},  # no patient
    ]
    (folder / "Appointment.ndjson").write_text(
        "\n".join(json.dumps(a) for a in appointments) + "\n"
    )
    return old, recent


def _options(stack: DevStack, folder: Path) -> backfill.Options:
    return backfill.Options(
        folder=folder,
        clinic_id=CLINIC,
        ingest_url=stack.urls["ingest"],
        segmenter_url=stack.urls["segmenter"],
        metrics_url=stack.urls["metrics"],
        api_key=stack.api_key,
        token=stack.admin_token,
        checkpoint=folder / "checkpoint.json",
        concurrency=1,
        bundle_size=1,
        show_progress=False,
    )


def _onboarding(stack: DevStack) -> dict[str, Any]:
    response = httpx.get(
        f"{stack.urls['segmenter']}/clinics/{CLINIC}/onboarding",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def _interrupted(options: backfill.Options) -> None:
    """Stopped (as by Ctrl-C) once the first submissions are in the checkpoint."""
    task = asyncio.create_task(backfill.run(options))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not task.done():
        path = options.checkpoint
        if path.exists() and len(json.loads(path.read_text())["done"]) >= 2:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_history_loads_held_resumes_after_an_interruption_and_messages_only_what_is_due(
    dev_stack: DevStack, tmp_path: Path
) -> None:
    move_clock(dev_stack, to=NOW)
    run = f"bf{uuid.uuid4().hex[:6]}"
    old, recent = _history(tmp_path, run)
    options = _options(dev_stack, tmp_path)

    try:
        asyncio.run(_interrupted(options))
        assert _onboarding(dev_stack)["holding"] is True  # an unfinished backfill keeps it held
        assert sandbox(dev_stack, recent) == []
        report = asyncio.run(backfill.run(options))
    finally:  # the other tests of the session share the clinic: never leave it held
        httpx.put(
            f"{dev_stack.urls['segmenter']}/clinics/{CLINIC}/onboarding",
            json={"holding": False},
            headers={"Authorization": f"Bearer {dev_stack.admin_token}"},
        )
    assert report.skipped >= 2  # resumed, not started over
    assert report.refused_records == 1
    assert report.refused[0].startswith("Appointment.ndjson#2: HTTP 422")
    assert report.found["cancelled_not_rescheduled"].get("open", 0) >= 1
    assert _onboarding(dev_stack)["holding"] is False
    lines = backfill.render(report)
    assert any(line.startswith("refused   1 records") for line in lines)

    assert wait_until(lambda: len(sandbox(dev_stack, recent)) == 1, timeout=60)
    time.sleep(2)
    assert sandbox(dev_stack, old) == []  # three years old: no message, ever
