"""Staff pause and stop a patient's outreach with a reason, on the real service: the decision is
the same as the plain operator routes, and the reason is recorded beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events.outreach import StopReason
from tests.sequencer.helpers import eligible
from tests.sequencer.service_harness import Service, running_sequencer

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
NOTE = "Her daughter called: she is in hospital, no messages for now."


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


async def test_pausing_and_stopping_with_a_reason_is_recorded_and_takes_effect(
    service: Service,
) -> None:
    key = service.key("p-1")
    await service.publish("p-1", eligible("cnr-1", due_at=T0), T0)
    await service.watcher.wait(key, "SendStep")
    url = f"/patients/{key}/outreach"
    paused = await service.client.post(
        f"{url}/pause", json={"reason": "clinical_hold", "note": NOTE}, headers=service.auth()
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_by_staff"] is True
    await service.set_time(T0 + timedelta(days=3))
    assert len(service.watcher.of(key, "SendStep")) == 1  # nothing more while paused
    stopped = await service.client.post(
        f"{url}/stop", json={"reason": "patient_asked"}, headers=service.auth()
    )
    assert stopped.status_code == 200
    [event] = await service.watcher.wait(key, "SequenceStopped")
    assert event.payload.reason is StopReason.manual
    listed = await service.client.get(f"{url}/actions", headers=service.auth("viewer"))
    assert [
        (a["action"], a["reason"], a["note"], a["actor"]) for a in listed.json()["actions"]
    ] == [
        ("pause", "clinical_hold", NOTE, "operator-1"),
        ("stop", "patient_asked", None, "operator-1"),
    ]


async def test_a_reason_is_required_known_and_only_operators_of_the_clinic_act(
    service: Service,
) -> None:
    key = service.key("p-2")
    url = f"/patients/{key}/outreach/pause"
    assert (await service.client.post(url, json={}, headers=service.auth())).status_code == 422
    unknown = await service.client.post(url, json={"reason": "bored"}, headers=service.auth())
    assert unknown.status_code == 422
    viewer = await service.client.post(
        url, json={"reason": "other"}, headers=service.auth("viewer")
    )
    assert viewer.status_code == 403
    other = await service.client.post(
        url, json={"reason": "other"}, headers=service.auth("operator", ["clinic-elsewhere"])
    )
    assert other.status_code == 403
    long = await service.client.post(
        url, json={"reason": "other", "note": "y" * 600}, headers=service.auth()
    )
    assert long.status_code == 422 and "yyyy" not in long.text
