"""Freed slots refilled, over the real broker and Postgres: a cancellation at 09:00 is offered
to the waitlisted patient first and then to the segment members by due date, never to a patient
who opted out; the first "yes" books it; the others are told it has gone; a booking of that time
by another route withdraws every offer."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer

from services.messenger.domain.booking import slot_time
from services.messenger.domain.freed_slots import offer_id_for
from shared.events.common import (
    EhrSource,
    Initiator,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
    SourceSystem,
)
from shared.events.ehr import AppointmentBooked, AppointmentCancelled, CancellationReason
from shared.events.eligibility import Documented, PatientBecameEligible, ReasonSource
from shared.events.envelope import Envelope
from shared.topics import EHR_EVENTS, ELIGIBILITY, MESSAGES
from tests.messenger.conftest import Messenger, envelope, new_clinic, types_of, wait_for

PROVIDER = "dr-okafor"


def nine_oclock(zone: str) -> datetime:
    """09:00 on the next weekday at least two days ahead (a sandbox slot's hour)."""
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(9), tzinfo=ZoneInfo(zone))


def source(record: str) -> EhrSource:
    return EhrSource(
        system=SourceSystem.fhir,
        record_id=record,
        source_updated_at=datetime.now(UTC) - timedelta(minutes=1),
    )


def cancelled(appointment_id: str, start: datetime) -> AppointmentCancelled:
    return AppointmentCancelled(
        source=source(appointment_id),
        appointment_id=appointment_id,
        start=start,
        service_line=ServiceLine.skin_check,
        provider_id=PROVIDER,
        location_id="loc-1",
        cancelled_by=Initiator.patient,
        reason_code=CancellationReason.schedule_conflict,
    )


def eligible(due_on: date) -> PatientBecameEligible:
    now = datetime.now(UTC)
    return PatientBecameEligible(
        eligibility_id=f"elig-{uuid.uuid4().hex[:10]}",
        segment=Segment.follow_up_not_booked,
        kind=SegmentKind.recall,
        service_line=ServiceLine.skin_check,
        reason="A skin check was recommended at the last visit and is not booked",
        source_record=SourceRecord(kind=SourceRecordKind.visit, id="visit-1"),
        due_at=datetime.combine(due_on, time(12), tzinfo=UTC),
        clinical_urgency="routine",
        needs_marketing_consent=False,
        provider_id=PROVIDER,
        documented=Documented(
            source=ReasonSource.visit,
            recorded_on=(now - timedelta(days=170)).date(),
            due_on=due_on,
        ),
    )


async def publish(messenger: Messenger, topic: str, *events: Envelope[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=messenger.bootstrap)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(topic, e.to_bytes(), key=e.patient_key.encode())
    finally:
        await producer.stop()


async def practice(messenger: Messenger, clinic: str) -> None:
    admin = messenger.token("admin", [clinic])
    for path, body in (
        (f"/practices/{clinic}", {"name": "Lakeside Skin", "phone": "555-0100"}),
        (f"/practices/{clinic}/providers/{PROVIDER}", {"display_name": "Dr. Okafor"}),
        (f"/practices/{clinic}/prices/skin_check", {"price_cents": 18000}),
    ):
        response = await messenger.client.put(path, json=body, headers=admin)
        assert response.status_code == 200, response.text


async def waitlist(messenger: Messenger, clinic: str, patient_key: str) -> dict[str, Any]:
    response = await messenger.client.post(
        f"/waitlist/{clinic}",
        json={"patient_key": patient_key, "service_line": "skin_check"},
        headers=messenger.token("operator", [clinic]),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def texts(messenger: Messenger, patient_key: str) -> list[str]:
    return [m["body"] for m in await messenger.sandbox(patient_key) if m["direction"] == "outbound"]


async def offered_patients(messenger: Messenger, offer_id: str, count: int) -> list[str]:
    async def enough() -> bool:
        n = await messenger.scalar(
            "SELECT count(*) FROM messenger.slot_offers WHERE offer_id = :o", o=offer_id
        )
        return bool(n >= count)

    assert await wait_for(enough, timeout=20), "the freed slot was not offered"
    rows = await messenger.rows(
        "SELECT patient_key FROM messenger.slot_offers WHERE offer_id = :o ORDER BY batch, "
        "patient_key",
        o=offer_id,
    )
    return [r["patient_key"] for r in rows]


@pytest.fixture
async def clinic_with_patients(messenger: Messenger) -> dict[str, str]:
    """A clinic with a waitlisted patient, three segment members (due in 5, 20 and 40 days), a
    waitlisted patient who opted out, and the patient who will cancel."""
    clinic = new_clinic()
    await practice(messenger, clinic)
    who: dict[str, str] = {"clinic": clinic}
    for name in ("waiting", "due_soon", "due_later", "due_last", "opted_out", "canceller"):
        who[name], _ = await messenger.new_patient(clinic)
    await waitlist(messenger, clinic, who["waiting"])
    await waitlist(messenger, clinic, who["opted_out"])
    await messenger.reply(who["opted_out"], "STOP")
    today = datetime.now(UTC).date()
    await publish(
        messenger,
        ELIGIBILITY.name,
        envelope(eligible(today + timedelta(days=20)), who["due_later"]),
        envelope(eligible(today + timedelta(days=5)), who["due_soon"]),
        envelope(eligible(today + timedelta(days=40)), who["due_last"]),
    )

    async def members() -> bool:
        n = await messenger.scalar(
            "SELECT count(*) FROM messenger.recall_members WHERE clinic_id = :c", c=clinic
        )
        return bool(n == 3)

    assert await wait_for(members, timeout=20)
    return who


async def test_a_cancelled_nine_oclock_goes_to_the_waitlist_first_and_the_first_yes_books_it(
    messenger: Messenger, clinic_with_patients: dict[str, str]
) -> None:
    who = clinic_with_patients
    clinic = who["clinic"]
    start = nine_oclock(messenger.settings.revisit_default_time_zone)
    appointment = f"appt-{uuid.uuid4().hex[:8]}"
    offer_id = offer_id_for(clinic, appointment)
    await publish(
        messenger, EHR_EVENTS.name, envelope(cancelled(appointment, start), who["canceller"])
    )

    # One batch of three: the waitlisted patient, then the two earliest due; never the patient
    # who opted out (though waitlisted first), never the one who cancelled.
    offered = await offered_patients(messenger, offer_id, 3)
    assert sorted(offered) == sorted([who["waiting"], who["due_soon"], who["due_later"]])
    sources = {
        r["patient_key"]: r["source"]
        for r in await messenger.rows(
            "SELECT patient_key, source FROM messenger.slot_offers WHERE offer_id = :o", o=offer_id
        )
    }
    assert sources[who["waiting"]] == "waitlist" and sources[who["due_soon"]] == "segment"
    for key in (who["waiting"], who["due_soon"], who["due_later"]):
        [offer] = await messenger.outbound(key, 1, timeout=15)
        assert "an earlier time opened with Dr. Okafor on " in offer["body"]
        # The time as the patient reads it: in the zone on their card, like every offer.
        zone = await messenger.scalar(
            "SELECT time_zone FROM messenger.contacts WHERE patient_key = :pk", pk=key
        )
        when = slot_time(start, ZoneInfo(zone), "en")
        assert f"on {when} for your skin check. Reply 1 to take it" in offer["body"]
    assert not any("earlier time" in t for t in await texts(messenger, who["opted_out"]))
    assert await texts(messenger, who["due_last"]) == []
    assert await texts(messenger, who["canceller"]) == []

    # The first "yes" books the slot; a later "1" from the waitlisted patient is told it has gone.
    await messenger.reply(who["due_soon"], "Yes please")

    async def claimed() -> bool:
        status = await messenger.scalar(
            "SELECT status FROM messenger.freed_slots WHERE offer_id = :o", o=offer_id
        )
        return status in ("claimed", "refilled")

    assert await wait_for(claimed, timeout=15)
    await messenger.reply(who["waiting"], "1")

    async def refilled() -> bool:
        status = await messenger.scalar(
            "SELECT status FROM messenger.freed_slots WHERE offer_id = :o", o=offer_id
        )
        return status == "refilled"

    assert await wait_for(refilled, timeout=20)
    bookings = await messenger.rows(
        "SELECT patient_key FROM messenger.sandbox_bookings WHERE slot_id = "
        "(SELECT slot_id FROM messenger.freed_slots WHERE offer_id = :o)",
        o=offer_id,
    )
    assert [b["patient_key"] for b in bookings] == [who["due_soon"]]
    confirmed = await messenger.outbound(who["due_soon"], 2, timeout=15)
    assert "We have requested" in confirmed[-1]["body"]
    for key in (who["waiting"], who["due_later"]):
        told = await messenger.outbound(key, 2, timeout=15)
        assert "has already been taken. To find another time, reply BOOK" in told[-1]["body"]
    statuses = {
        r["patient_key"]: r["status"]
        for r in await messenger.rows(
            "SELECT patient_key, status FROM messenger.slot_offers WHERE offer_id = :o", o=offer_id
        )
    }
    assert statuses == {
        who["due_soon"]: "accepted",
        who["waiting"]: "gone",
        who["due_later"]: "gone",
    }

    events = await messenger.events(
        MESSAGES.name, who["due_soon"], lambda es: "SlotRefilled" in types_of(es), timeout=15
    )
    [refill] = [e.payload for e in events if e.type == "SlotRefilled"]
    # Each patient told once that the time has gone, never twice.
    for key in (who["waiting"], who["due_later"]):
        assert sum("already been taken" in t for t in await texts(messenger, key)) == 1
    assert refill.offer_id == offer_id and refill.price_cents == 18000
    assert refill.start == start and refill.provider_id == PROVIDER
    freed = await messenger.events(
        MESSAGES.name, who["canceller"], lambda es: "SlotFreed" in types_of(es), timeout=15
    )
    assert [e.payload.appointment_id for e in freed if e.type == "SlotFreed"] == [appointment]
    listing = await messenger.client.get(
        f"/freed-slots/{clinic}", headers=messenger.token("viewer", [clinic])
    )
    [shown] = listing.json()["freed_slots"]
    assert shown["status"] == "refilled" and shown["price_cents"] == 18000
    assert {o["patient_key"]: o["status"] for o in shown["offers"]} == statuses


async def test_a_booking_of_that_time_from_the_ehr_withdraws_every_offer(
    messenger: Messenger, clinic_with_patients: dict[str, str]
) -> None:
    who = clinic_with_patients
    clinic = who["clinic"]
    start = nine_oclock(messenger.settings.revisit_default_time_zone) + timedelta(days=1)
    while start.weekday() >= 5:
        start += timedelta(days=1)
    appointment = f"appt-{uuid.uuid4().hex[:8]}"
    offer_id = offer_id_for(clinic, appointment)
    await publish(
        messenger, EHR_EVENTS.name, envelope(cancelled(appointment, start), who["canceller"])
    )
    offered = await offered_patients(messenger, offer_id, 3)
    # The front desk books the time for someone else by phone: the EHR reports it.
    walk_in = f"{clinic}:pt-phone"
    booked = AppointmentBooked(
        source=source("appt-phone"),
        appointment_id="appt-phone",
        start=start,
        service_line=ServiceLine.skin_check,
        provider_id=PROVIDER,
        location_id="loc-1",
    )
    await publish(messenger, EHR_EVENTS.name, envelope(booked, walk_in))

    async def taken() -> bool:
        status = await messenger.scalar(
            "SELECT status FROM messenger.freed_slots WHERE offer_id = :o", o=offer_id
        )
        return status == "taken"

    assert await wait_for(taken, timeout=20)
    for key in offered:
        told = await messenger.outbound(key, 2, timeout=15)
        assert "has already been taken" in told[-1]["body"]
    # A "yes" now finds nothing to take: no booking is made.
    await messenger.reply(offered[0], "1")
    assert not await messenger.scalar(
        "SELECT count(*) FROM messenger.sandbox_bookings WHERE patient_key = :pk", pk=offered[0]
    )


async def test_the_waitlist_is_kept_by_staff_of_the_clinic_only(messenger: Messenger) -> None:
    clinic, other = new_clinic(), new_clinic()
    patient, _ = await messenger.new_patient(clinic)
    operator = messenger.token("operator", [clinic])
    first = await waitlist(messenger, clinic, patient)
    assert first["created"] is True and first["entry"]["added_by"] == "operator-1"
    again = await messenger.client.post(
        f"/waitlist/{clinic}",
        json={"patient_key": patient, "service_line": "skin_check"},
        headers=operator,
    )
    assert again.status_code == 201 and again.json()["created"] is False
    assert again.json()["entry"]["entry_id"] == first["entry"]["entry_id"]

    refusals = [
        # another clinic's staff, a viewer, a patient of another clinic, an unknown service
        (messenger.token("operator", [other]), {"patient_key": patient}, 403),
        (messenger.token("viewer", [clinic]), {"patient_key": patient}, 403),
        (operator, {"patient_key": f"{other}:pt-1"}, 422),
        (operator, {"patient_key": patient, "service_line": "tattoo"}, 422),
        (operator, {"patient_key": patient, "note": "call after 5"}, 422),
    ]
    for headers, body, status in refusals:
        response = await messenger.client.post(f"/waitlist/{clinic}", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
    unknown = await messenger.client.post(
        f"/waitlist/{clinic}", json={"patient_key": patient, "service_line": "tattoo"},
        headers=operator,
    )  # fmt: skip
    assert unknown.json()["where"] == "body.service_line" and "tattoo" not in unknown.text

    listing = await messenger.client.get(
        f"/waitlist/{clinic}", headers=messenger.token("viewer", [clinic])
    )
    assert [e["patient_key"] for e in listing.json()] == [patient]
    entry = first["entry"]["entry_id"]
    assert (
        await messenger.client.delete(
            f"/waitlist/{other}/{entry}", headers=messenger.token("operator", [other])
        )
    ).status_code == 404
    removed = await messenger.client.delete(f"/waitlist/{clinic}/{entry}", headers=operator)
    assert removed.status_code == 200 and removed.json()["removed_at"]
    listing = await messenger.client.get(f"/waitlist/{clinic}", headers=operator)
    assert listing.json() == []
    slots = await messenger.client.get(f"/freed-slots/{clinic}", headers=operator)
    assert slots.status_code == 200 and slots.json() == {"freed_slots": []}


async def test_an_offer_is_checked_again_when_it_is_sent(messenger: Messenger) -> None:
    """Between the ranking and the send a patient may opt out, or the hour may turn: the
    dispatcher checks an offer again like a step, and refuses it without a word sent."""
    from services.messenger import queue
    from services.messenger.domain.checks import SendWindow
    from tests.messenger.conftest import night_zone

    clinic = new_clinic()
    out, _ = await messenger.new_patient(clinic)
    await messenger.reply(out, "STOP")
    asleep, _ = await messenger.new_patient(clinic, zone=night_zone())
    awake, _ = await messenger.new_patient(clinic)
    now = datetime.now(UTC)
    rows = []
    for key in (out, asleep, awake):
        address = await messenger.scalar(
            "SELECT phone FROM messenger.contacts WHERE patient_key = :pk", pk=key
        )
        mid = str(uuid.uuid4())
        rows.append(
            queue.QueuedMessage(
                message_id=mid,
                idempotency_key=mid,
                clinic_id=clinic,
                patient_key=key,
                kind="offer",
                channel="sms",
                provider="sandbox",
                sender="sandbox",
                address=address,
                body="Lakeside Skin: an earlier time opened on Wed. Reply 1 to take it.",
                created_at=now,
                purpose="care",
                expires_at=now + timedelta(hours=2),
                send_window=SendWindow().to_json(),
            )
        )
    async with messenger.runtime.sessions() as session, session.begin():
        await queue.enqueue(session, rows)

    async def settled() -> dict[str, tuple[str, str | None]] | None:
        found = {
            r["patient_key"]: (r["status"], r["failure"])
            for r in await messenger.rows(
                "SELECT patient_key, status, failure FROM messenger.outgoing "
                "WHERE message_id = ANY(:ids)",
                ids=[r.message_id for r in rows],
            )
        }
        return found if all(s != "queued" and s != "sending" for s, _ in found.values()) else None

    found = await settled() if await wait_for(settled, timeout=15) else None
    assert found == {
        out: ("blocked", "opted_out"),
        asleep: ("blocked", "quiet_hours"),
        awake: ("sent", None),
    }
    assert not any("earlier time" in t for t in await texts(messenger, out))
    assert await texts(messenger, asleep) == []


async def test_a_revisit_booking_of_the_time_from_another_conversation_withdraws_the_offers(
    messenger: Messenger, clinic_with_patients: dict[str, str]
) -> None:
    from services.messenger import conversations
    from services.messenger.domain.conversation import OfferedSlot

    who = clinic_with_patients
    clinic = who["clinic"]
    start = nine_oclock(messenger.settings.revisit_default_time_zone) + timedelta(days=3)
    while start.weekday() >= 5:
        start += timedelta(days=1)
    appointment = f"appt-{uuid.uuid4().hex[:8]}"
    offer_id = offer_id_for(clinic, appointment)
    await publish(
        messenger, EHR_EVENTS.name, envelope(cancelled(appointment, start), who["canceller"])
    )
    offered = await offered_patients(messenger, offer_id, 3)
    slot_id = await messenger.scalar(
        "SELECT slot_id FROM messenger.freed_slots WHERE offer_id = :o", o=offer_id
    )
    # A patient booking by text is offered that very time among others, and takes it.
    texter, _ = await messenger.new_patient(clinic)
    async with messenger.runtime.sessions() as session, session.begin():
        await conversations.save_offer(
            session,
            clinic,
            texter,
            (OfferedSlot(slot_id, start, PROVIDER, "loc-1"),),
            datetime.now(UTC) + timedelta(hours=1),
        )
    await messenger.reply(texter, "1")

    async def taken() -> bool:
        status = await messenger.scalar(
            "SELECT status FROM messenger.freed_slots WHERE offer_id = :o", o=offer_id
        )
        return status == "taken"

    assert await wait_for(taken, timeout=20)
    for key in offered:
        told = await messenger.outbound(key, 2, timeout=15)
        assert "has already been taken" in told[-1]["body"]
    booked = await messenger.rows(
        "SELECT patient_key FROM messenger.sandbox_bookings WHERE slot_id = :s", s=slot_id
    )
    assert [b["patient_key"] for b in booked] == [texter]
