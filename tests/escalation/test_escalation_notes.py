"""Notes on a case through the API: written by operators of the case's clinic, read by anyone in
it, audited without their words, never reachable from another clinic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.escalation.helpers import eventually, raised_event, rows
from tests.escalation.service_harness import T0, Service, running_service

NOTE = "Called twice, left a voicemail; trying again at noon."


@pytest.fixture(scope="module")
async def service(escalation_dsn: str, kafka: Any) -> AsyncIterator[Service]:
    async with running_service(escalation_dsn, kafka.bootstrap) as running:
        event = raised_event(running.clinic, at=T0)
        await running.publish(event)
        running.shared["esc_id"] = esc_id = event.payload.escalation_id

        async def stored() -> bool:
            found = await running.client.get(f"/cases/{esc_id}", headers=running.auth("nurse-1"))
            return found.status_code == 200

        assert await eventually(stored, timeout=20)
        yield running


async def test_an_operator_adds_notes_that_anyone_in_the_clinic_reads_in_order(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    esc_id = service.shared["esc_id"]
    url = f"/cases/{esc_id}/notes"
    with caplog.at_level(logging.DEBUG):
        first = await service.client.post(url, json={"note": NOTE}, headers=service.auth("rn-1"))
        second = await service.client.post(
            url, json={"note": "  Reached her.  "}, headers=service.auth("rn-2")
        )
    assert first.status_code == second.status_code == 201, first.text
    listed = await service.client.get(url, headers=service.auth("desk-1", "viewer"))
    assert [(n["author"], n["note"]) for n in listed.json()["notes"]] == [
        ("rn-1", NOTE),
        ("rn-2", "Reached her."),
    ]
    assert NOTE not in caplog.text
    trail = await rows(
        service.engine,
        "SELECT actor, detail FROM {s}.audit WHERE escalation_id = :e AND action = 'note_added'",
        e=esc_id,
    )
    assert [t["actor"] for t in trail] == ["rn-1", "rn-2"]
    assert all(t["detail"]["note"] is True and NOTE not in str(t["detail"]) for t in trail)


async def test_notes_are_refused_to_viewers_other_clinics_and_empty_words(
    service: Service,
) -> None:
    esc_id = service.shared["esc_id"]
    url = f"/cases/{esc_id}/notes"
    viewer = await service.client.post(
        url, json={"note": NOTE}, headers=service.auth("desk-1", "viewer")
    )
    assert viewer.status_code == 403
    other = service.auth("rn-9", "operator", service.other)
    assert (await service.client.post(url, json={"note": NOTE}, headers=other)).status_code == 404
    assert (await service.client.get(url, headers=other)).status_code == 404
    empty = await service.client.post(url, json={"note": "   "}, headers=service.auth("rn-1"))
    assert empty.status_code == 422
    long = await service.client.post(url, json={"note": "x" * 2001}, headers=service.auth("rn-1"))
    assert long.status_code == 422 and "xxxx" not in long.text
    unknown = await service.client.post(
        "/cases/esc-nope/notes", json={"note": NOTE}, headers=service.auth("rn-1")
    )
    assert unknown.status_code == 404


async def test_a_patients_cases_are_listed_for_their_clinic_only(service: Service) -> None:
    esc_id = service.shared["esc_id"]
    case = (await service.client.get(f"/cases/{esc_id}", headers=service.auth("rn-1"))).json()
    url = f"/patients/{case['patient_key']}/cases"
    listed = await service.client.get(url, headers=service.auth("desk-1", "viewer"))
    assert [c["escalation_id"] for c in listed.json()["cases"]] == [esc_id]
    other = service.auth("rn-9", "viewer", service.other)
    assert (await service.client.get(url, headers=other)).status_code == 403
