"""The simulated EHR feed against the real ingest service: HTTP for FHIR and JSON, MLLP for HL7."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.events.common import ServiceLine
from simulator.feed import EhrFeed, FeedError
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Charge,
    Clinic,
    FeedbackRecord,
    FollowUp,
    Happening,
    Journey,
    Location,
    Patient,
    Persona,
    Provider,
    QuestionRecord,
    Service,
    VisitRecord,
)
from tests.ingest.conftest import Ingest

pytestmark = pytest.mark.integration
SL = ServiceLine
T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
CATALOGUE = (
    Service("SKINCHECK", "96904", "Full-body skin check", SL.skin_check, 150_00, 30),
    Service("PSORIASIS", "99214", "Psoriasis & eczema review", SL.psoriasis_eczema, 140_00, 25),
)


def clinic_for(clinic_id: str) -> Clinic:
    return Clinic(
        clinic_id=clinic_id,
        name="Lakeside Dermatology",
        time_zone="America/Chicago",
        state="TX",
        locations=(Location("loc-down", "Downtown"),),
        providers=(Provider("dr-rivera", "Dr. Rivera", "loc-down", ("SKINCHECK", "PSORIASIS")),),
        catalogue=CATALOGUE,
    )


def patient(patient_id: str, phone: str, consent: bool) -> Patient:
    return Patient(
        patient_id=patient_id,
        given_name="Sam",
        family_name="Testperson",
        birth_date=date(1975, 6, 1),
        sex="male",
        phone=phone,
        email=f"{patient_id.lower()}@example.net",
        language="en",
        persona=Persona.prompt,
        journey=Journey.follow_up,
        home_location_id="loc-down",
        provider_id="dr-rivera",
        marketing_consent=consent,
    )


ANA, BEN = patient("P-1", "+15125550101", True), patient("P-2", "+15125550102", False)
PATIENTS = {p.patient_id: p for p in (ANA, BEN)}


def booking(appointment_id: str, who: Patient, **changes: Any) -> AppointmentRecord:
    fields: dict[str, Any] = {
        "appointment_id": appointment_id,
        "patient_id": who.patient_id,
        "service_code": "SKINCHECK",
        "provider_id": "dr-rivera",
        "location_id": "loc-down",
        "start": T0 + timedelta(days=7),
        "minutes": 30,
        "status": AppointmentStatus.booked,
        "version": 1,
    }
    return AppointmentRecord(**(fields | changes))


def visit(visit_id: str, appointment_id: str | None) -> VisitRecord:
    start = T0 + timedelta(days=7)
    return VisitRecord(
        visit_id=visit_id,
        patient_id=ANA.patient_id,
        appointment_id=appointment_id,
        provider_id="dr-rivera",
        location_id="loc-down",
        start=start,
        end=start + timedelta(minutes=35),
        charges=(Charge("SKINCHECK", "96904", 150_00), Charge("PSORIASIS", "99214", 140_00)),
        follow_up=FollowUp(f"FU-{visit_id}", "SKINCHECK", date(2027, 5, 10), None),
    )


def a_week_of_the_practice() -> list[Happening]:
    kept = booking("A-1", ANA, status=AppointmentStatus.fulfilled, version=2)
    cancelled = booking(
        "A-2", BEN, status=AppointmentStatus.cancelled, version=2, cancelled_by="patient"
    )
    the_visit = visit("V-1", "A-1")
    return [
        Happening(T0, booking("A-1", ANA), via="hl7"),
        Happening(T0 + timedelta(hours=1), booking("A-2", BEN), via="hl7"),
        Happening(T0 + timedelta(days=2), cancelled, via="hl7"),
        Happening(
            T0 + timedelta(days=3),
            QuestionRecord("Q-1", BEN.patient_id, "PSORIASIS", T0 + timedelta(days=3), 7),
        ),
        Happening(T0 + timedelta(days=7), kept, via="hl7"),
        Happening(the_visit.end, the_visit),
        Happening(
            T0 + timedelta(days=8),
            FeedbackRecord("F-1", ANA.patient_id, "V-1", 4, ("wait_time",), T0 + timedelta(days=8)),
        ),
    ]


async def feed_for(ingest: Ingest, ingest_url: str, clinic_id: str, key: str) -> EhrFeed:
    return EhrFeed(ingest_url, key, "127.0.0.1", ingest.mllp_port, clinic_for(clinic_id), PATIENTS)


async def test_a_week_of_records_is_accepted_and_published_as_revisit_events(
    ingest: Ingest, ingest_url: str
) -> None:
    clinic_id, key = await ingest.new_clinic("feed")
    feed = await feed_for(ingest, ingest_url, clinic_id, key)
    try:
        report = await feed.send(a_week_of_the_practice())
    finally:
        await feed.close()
    # 2 patients, 4 SIU messages, visit, question, its triage, survey answer
    assert (report.accepted, report.duplicates, report.refused) == (10, 0, 0), report.reasons
    events = await ingest.topic_events(clinic_id, 16)
    kinds = [e["type"] for e in events]
    for kind in (
        "ConsentChanged",
        "AppointmentBooked",
        "AppointmentCancelled",
        "AppointmentKept",
        "VisitCompleted",
        "FollowUpRecommended",
        "ExperienceFeedbackRecorded",
    ):
        assert kind in kinds
    completed = next(e["payload"] for e in events if e["type"] == "VisitCompleted")
    assert sum(s["charge_cents"] for s in completed["services"]) == 290_00
    questions = [e["payload"] for e in events if e["type"] == "PatientQuestionReceived"]
    assert sorted(q["review_recommended"] for q in questions) == [False, True]
    cancelled = next(e["payload"] for e in events if e["type"] == "AppointmentCancelled")
    assert (cancelled["appointment_id"], cancelled["cancelled_by"]) == ("A-2", "patient")
    consents = [e for e in events if e["type"] == "ConsentChanged"]
    assert [c["patient_key"] for c in consents] == [f"{clinic_id}:P-1"]  # only the opt-in


async def test_sending_the_same_records_again_publishes_nothing_new(
    ingest: Ingest, ingest_url: str
) -> None:
    clinic_id, key = await ingest.new_clinic("resend")
    week = a_week_of_the_practice()
    feed = await feed_for(ingest, ingest_url, clinic_id, key)
    try:
        await feed.send(week)
        staged = await ingest.events_staged(clinic_id)
        again = await feed.send(week)  # the same feed: patients are not introduced twice
    finally:
        await feed.close()
    restarted = await feed_for(ingest, ingest_url, clinic_id, key)
    try:
        after_restart = await restarted.send(week)
    finally:
        await restarted.close()
    assert staged > 0
    assert await ingest.events_staged(clinic_id) == staged
    # HTTP says "duplicate"; MLLP answers a resend AA like any other (counted as accepted)
    assert (again.accepted, again.duplicates, again.refused) == (4, 4, 0)
    assert (after_restart.accepted, after_restart.duplicates, after_restart.refused) == (4, 6, 0)


async def test_a_broken_record_is_refused_with_its_reason_and_the_rest_go_through(
    ingest: Ingest, ingest_url: str
) -> None:
    clinic_id, key = await ingest.new_clinic("broken")
    happenings = [
        Happening(T0, booking("A-1", ANA), via="hl7"),
        Happening(T0, booking("", ANA, start=T0 + timedelta(days=9)), via="hl7"),  # no SCH-2
        Happening(T0 + timedelta(days=7), visit("V-1", "A-1")),
        Happening(T0 + timedelta(days=7), visit("V 2!", None)),  # not a FHIR id
        Happening(
            T0 + timedelta(days=8),
            FeedbackRecord("F-1", ANA.patient_id, "V-1", 10, (), T0 + timedelta(days=8)),
        ),
    ]
    feed = await feed_for(ingest, ingest_url, clinic_id, key)
    try:
        report = await feed.send(happenings)
    finally:
        await feed.close()
    assert (report.accepted, report.refused) == (4, 2)  # patient, A-1, V-1, F-1
    assert any(r.startswith("appointment  v1: SCH-2") for r in report.reasons), report.reasons
    assert any(r.startswith("visit V 2!: Bundle.entry[0].Encounter.id") for r in report.reasons)
    events = await ingest.topic_events(clinic_id, 7)
    kinds = [e["type"] for e in events]
    assert kinds.count("AppointmentBooked") == 1
    visits = [e["payload"]["visit_id"] for e in events if e["type"] == "VisitCompleted"]
    assert visits == ["V-1"]
    assert "ExperienceFeedbackRecorded" in kinds


async def test_hl7_without_an_ack_is_sent_again_on_a_new_connection(
    ingest: Ingest, ingest_url: str
) -> None:
    """A listener that drops the first connection after one frame stands in for a network
    failure; everything the feed had no ACK for arrives again on the second connection."""
    connections: list[list[bytes]] = []

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames: list[bytes] = []
        connections.append(frames)
        try:
            while True:
                frame = await reader.readuntil(b"\x1c\x0d")
                frames.append(frame)
                if len(connections) == 1:
                    return  # dropped before acknowledging anything
                control = frame.split(b"\r", 1)[0].split(b"|")[9]
                writer.write(b"\x0bMSH|^~\\&|REVISIT\rMSA|AA|" + control + b"\r\x1c\x0d")
                await writer.drain()
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    server = await asyncio.start_server(flaky, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clinic_id, key = await ingest.new_clinic("flaky")
    clinic = clinic_for(clinic_id)
    feed = EhrFeed(ingest_url, key, "127.0.0.1", port, clinic, PATIENTS, backoff_seconds=0.01)
    happenings = [Happening(T0, booking(f"A-{n}", ANA), via="hl7") for n in range(3)]
    try:
        report = await feed.send(happenings)
    finally:
        await feed.close()
        server.close()
    assert (report.accepted, report.refused) == (4, 0)  # the patient and three bookings
    assert len(connections) == 2
    assert len(connections[1]) == 3


async def test_an_unreachable_ingest_is_retried_then_raised(
    ingest: Ingest, ingest_url: str
) -> None:
    nowhere = EhrFeed(
        "http://127.0.0.1:9", "rvk_x", "127.0.0.1", 9, clinic_for("c-x"), PATIENTS, attempts=2
    )
    try:
        with pytest.raises(FeedError, match="after 2 attempts"):
            await nowhere.send([Happening(T0, visit("V-1", None))])
    finally:
        await nowhere.close()

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    clinic_id, key = await ingest.new_clinic("hangup")
    port = server.sockets[0].getsockname()[1]
    feed = EhrFeed(ingest_url, key, "127.0.0.1", port, clinic_for(clinic_id), PATIENTS, attempts=2)
    try:
        with pytest.raises(FeedError, match="MLLP failed 2 times"):
            await feed.send([Happening(T0, booking("A-1", ANA), via="hl7")])
    finally:
        await feed.close()
        server.close()
