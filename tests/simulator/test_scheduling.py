"""The practice's bookable time (pure) and its FHIR scheduling server, driven by the
messenger's real FHIR adapter over a real local socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.messenger.booking import find_offer
from services.messenger.scheduling.base import Booked, Slot, SlotQuery
from services.messenger.scheduling.fhir import FhirScheduling
from shared.events.common import ServiceLine
from simulator.calendar import BookedAppointment, Booking, Calendar
from simulator.model import Clinic, Location, Provider, Service
from simulator.scheduling import SchedulingServer

ZONE = ZoneInfo("America/Chicago")
# Monday 2026-03-02 10:10 in Chicago (16:10 UTC).
MONDAY = datetime(2026, 3, 2, 10, 10, tzinfo=ZONE)

CLINIC = Clinic(
    clinic_id="clinic-test",
    name="Lakeside Dermatology",
    time_zone="America/Chicago",
    state="IL",
    locations=(Location("loc-1", "Downtown"), Location("loc-2", "Northside")),
    providers=(
        Provider("dr-1", "Dr. Rivera", "loc-1", ("SKINCHECK", "BXFU")),
        Provider("dr-2", "Dr. Okafor", "loc-2", ("SKINCHECK", "LASER")),
        Provider("np-3", "Sam Lee, NP", "loc-2", ("BOTOX",)),
    ),
    catalogue=(
        Service("SKINCHECK", "99213", "Full-body skin check", ServiceLine.skin_check, 15000, 30),
        Service("BXFU", "99212", "Biopsy follow-up", ServiceLine.biopsy_follow_up, 9000, 30),
        Service("LASER", "17106", "Laser session", ServiceLine.laser, 40000, 60, sessions=4),
        Service("BOTOX", "64615", "Neurotoxin", ServiceLine.neurotoxin, 50000, 30, cosmetic=True),
    ),
)


def local(slot_start: datetime) -> datetime:
    return slot_start.astimezone(ZONE)


# --- the calendar, pure ---------------------------------------------------------------------


def test_free_slots_are_weekday_working_hours_in_the_clinics_zone_and_after_the_asked_time():
    calendar = Calendar(CLINIC)
    slots = calendar.free_slots(
        after=MONDAY, provider_id="dr-1", location_id=None, service_line="skin_check", limit=40
    )
    assert len(slots) == 40
    assert slots[0].start == datetime(2026, 3, 2, 10, 30, tzinfo=ZONE)
    for slot in slots:
        start, end = local(slot.start), local(slot.end)
        assert slot.start >= MONDAY
        assert start.weekday() < 5
        assert time(8) <= start.time() and end.time() <= time(17) and end.date() == start.date()
        assert end - start == timedelta(minutes=30)
        assert (slot.provider_id, slot.location_id) == ("dr-1", "loc-1")
    assert [s.start for s in slots] == sorted(s.start for s in slots)


def test_a_search_after_friday_closing_starts_on_monday_morning():
    friday_evening = datetime(2026, 3, 6, 17, 0, tzinfo=ZONE)
    calendar = Calendar(CLINIC)
    [first] = calendar.free_slots(
        after=friday_evening, provider_id="dr-1", location_id=None, service_line=None, limit=1
    )
    assert first.start == datetime(2026, 3, 9, 8, 0, tzinfo=ZONE)


def test_a_provider_who_does_not_offer_the_service_line_has_no_slots():
    calendar = Calendar(CLINIC)
    assert (
        calendar.free_slots(
            after=MONDAY, provider_id="dr-1", location_id=None, service_line="laser", limit=3
        )
        == []
    )


def test_without_a_provider_every_provider_offering_the_service_line_is_searched():
    calendar = Calendar(CLINIC)
    slots = calendar.free_slots(
        after=MONDAY, provider_id=None, location_id=None, service_line="skin_check", limit=6
    )
    assert {s.provider_id for s in slots} == {"dr-1", "dr-2"}
    north = calendar.free_slots(
        after=MONDAY, provider_id=None, location_id="loc-2", service_line="skin_check", limit=6
    )
    assert {s.provider_id for s in north} == {"dr-2"}


def test_a_longer_service_needs_that_much_free_time_in_a_row_before_closing():
    calendar = Calendar(CLINIC)
    calendar.reserve("dr-2", datetime(2026, 3, 3, 9, 0, tzinfo=ZONE), 30)
    tuesday = calendar.free_slots(
        after=datetime(2026, 3, 3, 8, 0, tzinfo=ZONE),
        provider_id="dr-2",
        location_id=None,
        service_line="laser",
        limit=20,
    )
    starts = [local(s.start).time() for s in tuesday if local(s.start).day == 3]
    assert time(8, 30) not in starts and time(9) not in starts  # would overlap 09:00-09:30
    assert time(8) in starts and time(9, 30) in starts
    assert max(starts) == time(16)  # a 60-minute session still ends by 17:00
    assert all(s.end - s.start == timedelta(minutes=60) for s in tuesday)


def test_reserved_appointments_are_never_offered_even_off_the_half_hour():
    calendar = Calendar(CLINIC)
    calendar.reserve("dr-1", datetime(2026, 3, 2, 11, 15, tzinfo=ZONE), 20)
    starts = [
        local(s.start).time()
        for s in calendar.free_slots(
            after=MONDAY, provider_id="dr-1", location_id=None, service_line=None, limit=6
        )
    ]
    # 11:15-11:35 overlaps both the 11:00 and the 11:30 half-hours
    assert starts == [time(10, 30), time(12), time(12, 30), time(13), time(13, 30), time(14)]


def test_slot_ids_are_stable_and_name_the_provider_and_local_start():
    first = Calendar(CLINIC).free_slots(
        after=MONDAY, provider_id="dr-1", location_id=None, service_line="skin_check", limit=2
    )
    again = Calendar(CLINIC).free_slots(
        after=MONDAY, provider_id="dr-1", location_id=None, service_line="skin_check", limit=2
    )
    assert [s.slot_id for s in first] == [s.slot_id for s in again]
    assert first[0].slot_id == "S-dr-1-202603021030-SKINCHECK"


def test_booking_is_idempotent_per_request_and_a_booked_slot_is_taken_for_anyone_else():
    calendar = Calendar(CLINIC)
    [slot] = calendar.free_slots(
        after=MONDAY, provider_id="dr-2", location_id=None, service_line="laser", limit=1
    )
    made = calendar.book(slot.slot_id, patient_id="P-000001", request_id="req-1")
    assert made.status is Booking.created and made.appointment is not None
    assert made.appointment.appointment_id.startswith("A-S")
    assert made.appointment.service_line == "laser"
    assert made.appointment.end - made.appointment.start == timedelta(minutes=60)
    repeat = calendar.book(slot.slot_id, patient_id="P-000001", request_id="req-1")
    assert repeat.status is Booking.existing and repeat.appointment == made.appointment
    other = calendar.book(slot.slot_id, patient_id="P-000002", request_id="req-2")
    assert other.status is Booking.taken and other.appointment is None
    [next_free] = calendar.free_slots(
        after=MONDAY, provider_id="dr-2", location_id=None, service_line="laser", limit=1
    )
    assert next_free.start == slot.start + timedelta(minutes=60)


@pytest.mark.parametrize(
    "slot_id",
    [
        "nonsense",
        "S-dr-9-202603021030",  # no such provider
        "S-dr-1-202603071030",  # a Saturday
        "S-dr-1-202603021045",  # off the half-hour grid
        "S-dr-1-202603021700",  # closing time
        "S-dr-1-202603021030-LASER",  # dr-1 does not do laser
        "S-dr-2-202603021630-LASER",  # a 60-minute session would end after 17:00
        "S-dr-1-2026030210",
    ],
)
def test_a_slot_id_the_practice_does_not_have_is_unknown(slot_id):
    outcome = Calendar(CLINIC).book(slot_id, patient_id="P-1", request_id="r")
    assert outcome.status is Booking.unknown


def test_a_slot_that_has_already_started_is_unknown():
    outcome = Calendar(CLINIC).book(
        "S-dr-1-202603021030", patient_id="P-1", request_id="r", now=MONDAY + timedelta(hours=1)
    )
    assert outcome.status is Booking.unknown


# --- the FHIR server, through the messenger's own client ---------------------------------------


@contextlib.asynccontextmanager
async def serving(calendar: Calendar) -> AsyncIterator[tuple[str, list[BookedAppointment]]]:
    told: list[BookedAppointment] = []

    async def on_booked(appointment: BookedAppointment) -> None:
        told.append(appointment)

    server = SchedulingServer(calendar, on_booked)
    base_url = await server.start()
    try:
        yield base_url, told
    finally:
        await server.stop()


async def test_the_messenger_finds_slots_for_its_provider_and_service_line_over_fhir():
    async with serving(Calendar(CLINIC)) as (base_url, _):
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/fhir")
        client = FhirScheduling(base_url)
        after = MONDAY.astimezone(UTC)
        query = SlotQuery("clinic-test", ServiceLine.skin_check, "dr-2", None, after, limit=3)
        slots = await client.find_slots(query)
        await client.close()
    assert len(slots) == 3
    for slot in slots:
        start = local(slot.start)
        assert slot.start > after and start.weekday() < 5
        assert time(8) <= start.time() < time(17)
        assert slot.slot_id.startswith("S-dr-2-") and slot.slot_id.endswith("-SKINCHECK")
        assert slot.end is not None and slot.end - slot.start == timedelta(minutes=30)


async def test_a_service_line_the_provider_does_not_offer_finds_nothing_over_fhir():
    async with serving(Calendar(CLINIC)) as (base_url, _):
        client = FhirScheduling(base_url)
        query = SlotQuery("clinic-test", ServiceLine.neurotoxin, "dr-1", None, MONDAY)
        assert await client.find_slots(query) == []
        by_location = SlotQuery("clinic-test", ServiceLine.neurotoxin, None, "loc-2", MONDAY)
        found = await client.find_slots(by_location)
        await client.close()
    assert found and all(s.slot_id.startswith("S-np-3-") for s in found)


async def test_the_messenger_offers_another_providers_times_when_its_provider_has_none():
    async with serving(Calendar(CLINIC)) as (base_url, _):
        client = FhirScheduling(base_url)
        query = SlotQuery("clinic-test", ServiceLine.neurotoxin, "dr-1", None, MONDAY)
        offered = await find_offer(client, query)
        own = await find_offer(client, replace(query, service_line=ServiceLine.skin_check))
        named = await find_offer(client, query, ["dr-1", "dr-2", "np-3"])
        await client.close()
    assert offered.slots and all(s.slot_id.startswith("S-np-3-") for s in offered.slots)
    assert not offered.same and offered.provider_id is None  # nobody named: any provider
    assert own.same and all(s.slot_id.startswith("S-dr-1-") for s in own.slots)
    # With the practice's providers known, the offer says whose times they are.
    assert (named.provider_id, named.same) == ("np-3", False)
    assert all(s.slot_id.startswith("S-np-3-") and s.provider_id == "np-3" for s in named.slots)


async def test_with_a_token_the_scheduling_api_refuses_a_caller_without_it():
    server = SchedulingServer(Calendar(CLINIC), lambda _a: None, token="s3cret-token")
    base_url = await server.start()
    try:
        query = SlotQuery("clinic-test", ServiceLine.skin_check, "dr-2", None, MONDAY)
        anonymous = FhirScheduling(base_url)
        assert await anonymous.find_slots(query) == []  # a 401 offers nothing
        async with httpx.AsyncClient() as client:
            refused = await client.get(f"{base_url}/Slot", params={"status": "free"})
        assert refused.status_code == 401
        assert refused.json()["resourceType"] == "OperationOutcome"
        trusted = FhirScheduling(base_url, token="s3cret-token")
        assert len(await trusted.find_slots(query)) == 3
        await anonymous.close()
        await trusted.close()
    finally:
        await server.stop()


async def test_booking_over_fhir_books_once_per_request_and_refuses_a_taken_slot():
    calendar = Calendar(CLINIC)
    async with serving(calendar) as (base_url, told):
        client = FhirScheduling(base_url)
        query = SlotQuery("clinic-test", ServiceLine.laser, "dr-2", None, MONDAY, limit=1)
        [slot] = await client.find_slots(query)
        first = await client.book(
            slot, clinic_id="clinic-test", patient_id="P-000042", booking_request_id="br-1"
        )
        again = await client.book(
            slot, clinic_id="clinic-test", patient_id="P-000042", booking_request_id="br-1"
        )
        other = await client.book(
            slot, clinic_id="clinic-test", patient_id="P-000043", booking_request_id="br-2"
        )
        [after_booking] = await client.find_slots(query)
        await client.close()
    assert first.outcome is Booked.booked and first.appointment_id
    assert first.appointment_id.startswith("A-S")
    assert again.outcome is Booked.booked and again.appointment_id == first.appointment_id
    assert other.outcome is Booked.taken
    assert [a.appointment_id for a in told] == [first.appointment_id]
    [appointment] = told
    assert (appointment.patient_id, appointment.provider_id) == ("P-000042", "dr-2")
    assert (appointment.location_id, appointment.service_line) == ("loc-2", "laser")
    assert (appointment.request_id, appointment.start) == ("br-1", slot.start)
    assert after_booking.start >= slot.start + timedelta(minutes=60)


async def test_the_server_answers_fhir_shapes_and_refuses_bodies_it_cannot_book():
    async with serving(Calendar(CLINIC)) as (base_url, told), httpx.AsyncClient() as http:
        search = await http.get(
            f"{base_url}/Slot",
            params={"status": "free", "start": "ge" + MONDAY.isoformat(), "_count": "2"},
        )
        slot_id = search.json()["entry"][0]["resource"]["id"]
        headers = {"If-None-Exist": "identifier=urn:revisit:booking-request|br-9"}
        no_patient = {
            "resourceType": "Appointment",
            "slot": [{"reference": f"Slot/{slot_id}"}],
            "participant": [{"actor": {"reference": "Practitioner/dr-1"}}],
        }
        unknown_slot = {
            "resourceType": "Appointment",
            "slot": [{"reference": "Slot/S-dr-1-202603071030"}],
            "participant": [{"actor": {"reference": "Patient/P-1"}}],
        }
        refused = await http.post(f"{base_url}/Appointment", json=no_patient, headers=headers)
        unknown = await http.post(f"{base_url}/Appointment", json=unknown_slot, headers=headers)
        garbled = await http.post(f"{base_url}/Appointment", content=b"{", headers=headers)
        booked = await http.post(
            f"{base_url}/Appointment",
            json={**unknown_slot, "slot": [{"reference": f"Slot/{slot_id}"}]},
            headers=headers,
        )
    bundle = search.json()
    assert search.headers["content-type"].startswith("application/fhir+json")
    assert (bundle["resourceType"], bundle["type"], len(bundle["entry"])) == (
        "Bundle",
        "searchset",
        2,
    )
    resource = bundle["entry"][0]["resource"]
    assert resource["status"] == "free" and resource["schedule"]["reference"].startswith(
        "Schedule/"
    )
    assert (refused.status_code, unknown.status_code, garbled.status_code) == (422, 422, 400)
    for answer in (refused, unknown, garbled):
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert booked.status_code == 201 and booked.json()["status"] == "booked"
    appointment_id = booked.json()["id"]
    assert booked.headers["location"].endswith(f"Appointment/{appointment_id}/_history/1")
    assert [a.appointment_id for a in told] == [appointment_id]


async def test_a_slot_handed_to_the_client_keeps_its_provider_when_booked():
    calendar = Calendar(CLINIC)
    async with serving(calendar) as (base_url, told):
        client = FhirScheduling(base_url)
        slot = Slot("S-dr-1-202603031400-BXFU", datetime(2026, 3, 3, 14, tzinfo=ZONE))
        result = await client.book(
            slot, clinic_id="clinic-test", patient_id="P-7", booking_request_id="br-7"
        )
        await client.close()
    assert result.outcome is Booked.booked
    assert told[0].provider_id == "dr-1" and told[0].service_line == "biopsy_follow_up"
