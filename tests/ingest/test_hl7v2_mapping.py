"""HL7 v2 messages -> facts, refusals that name segment and field, and the ACKs that say so."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.ingest import submissions
from services.ingest.domain import MappingContext
from services.ingest.hl7v2.ack import build_ack
from services.ingest.hl7v2.reading import redacted
from services.ingest.mapping.appointments import AppointmentVersion
from services.ingest.mapping.drafts import finalize
from services.ingest.submissions import Submission
from shared.events.common import ContactKind, ContactUse, Initiator, ServiceLine
from shared.events.ehr import CancellationReason

CTX = MappingContext(
    received_at=datetime(2026, 11, 20, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)


def siu(
    trigger: str = "S12",
    *,
    control: str = "M1",
    sent: str = "20261120090000-0600",
    start: str = "20261128100000-0600",
    status: str = "Booked",
    reason: str = "",
    pid3: str = "MRN-7^^^DERM^MR",
    version: str = "2.5.1",
    security: str = "",
    service: str = "MOHS^Mohs surgery^L",
) -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|EMA|DERM|REVISIT|REVISIT|{sent}|{security}|SIU^{trigger}^SIU_S12|"
            f"{control}|P|{version}",
            "|".join(["SCH", "P-1", "A-9", "", "", "", reason, "FOLLOWUP^Follow-up^HL70276"])
            + "|" * 18
            + status,
            f"TQ1|||||||{start}|",
            f"PID|1||{pid3}||Doe^Ana^^^^^L~Doe^Annie^^^^^N||19800101|F|||"
            "12 Main St^^Austin^TX^78701^US||(512)555-0101^PRN^CP^^^^^^^^^^^^^^^2~"
            "^NET^Internet^ana@example.org^^^^^^^^^^^^^^1~5125550199^PRN^FX||eng",
            "RGS|1",
            f"AIS|1||{service}|{start}|||45|min",
            "AIL|1||ROOM 3^^^DERM",
            "AIP|1||DR77^Smith^Jo",
        ]
    )


def read(text: str, ctx: MappingContext = CTX) -> Submission:
    [sub] = submissions.hl7_body(text.encode(), "clinic-1", None, ctx, "hl7v2")
    return sub


def events(text: str, history: dict[str, list[AppointmentVersion]] | None = None) -> list:
    sub = read(text)
    assert sub.mapped is not None, sub.refused and sub.refused.problems
    facts, _ = finalize(sub.mapped, {} if history is None else history)
    return [f.payload for f in facts]


def test_a_booking_names_the_patient_then_the_appointment() -> None:
    patient, booked = events(siu())
    assert patient.event_type == "PatientUpserted" and booked.event_type == "AppointmentBooked"
    assert booked.appointment_id == "A-9"
    assert booked.start == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    assert booked.service_line is ServiceLine.mohs
    assert (booked.provider_id, booked.location_id, booked.duration_minutes) == (
        "DR77",
        "ROOM%203",
        45,
    )
    assert booked.source.source_updated_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_the_patient_is_greeted_by_nickname_reached_by_rank_and_speaks_english() -> None:
    patient = events(siu())[0]
    assert patient.given_name == "Annie"
    assert [(c.kind, c.value, c.use, c.rank) for c in patient.contacts] == [
        (ContactKind.email, "ana@example.org", ContactUse.home, 1),
        (ContactKind.phone, "+15125550101", ContactUse.mobile, 2),
    ]  # the fax number is not a way to reach a patient
    assert (patient.preferred_language, patient.time_zone) == ("en", "America/Chicago")
    assert patient.home_state == "TX"


def test_a_moved_booking_is_a_reschedule_with_the_previous_start() -> None:
    history: dict[str, list[AppointmentVersion]] = {}
    events(siu(), history)
    moved = events(
        siu("S13", control="M2", sent="20261121090000-0600", start="20261201100000-0600"), history
    )[1]
    assert moved.event_type == "AppointmentRescheduled"
    assert moved.previous_start == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    assert moved.start == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def test_an_old_version_arriving_late_is_compared_with_what_preceded_it_not_the_newest() -> None:
    history: dict[str, list[AppointmentVersion]] = {}
    newer = siu("S13", control="M2", sent="20261121090000-0600", start="20261201100000-0600")
    assert events(newer, history)[1].event_type == "AppointmentBooked"  # nothing known before it
    late = events(siu(), history)[1]
    assert late.event_type == "AppointmentBooked"
    assert late.source.source_updated_at < events(newer, history)[1].source.source_updated_at


@pytest.mark.parametrize(
    ("trigger", "status", "expected"),
    [
        ("S14", "Noshow", "AppointmentNoShow"),
        ("S14", "Sch^Scheduled^SCHEDULING", "AppointmentBooked"),
        ("S14", "^Arrived", "AppointmentKept"),
        ("S12", "Pending", None),
        ("S12", "Waitlist", None),
        ("S15", "Booked", "AppointmentCancelled"),  # the trigger decides for S15
        ("S26", "", "AppointmentNoShow"),
    ],
)
def test_filler_status_is_read_as_a_bare_code_or_a_coded_element(
    trigger: str, status: str, expected: str | None
) -> None:
    found = [p.event_type for p in events(siu(trigger, status=status))][1:]
    assert found == ([expected] if expected else [])


def test_a_cancellation_says_who_and_why_when_sch_6_is_a_known_reason() -> None:
    cancelled = events(siu("S15", reason="pat-fb^Feeling better"))[1]
    assert (cancelled.cancelled_by, cancelled.reason_code) == (
        Initiator.patient,
        CancellationReason.feeling_better,
    )


def test_a_deleted_appointment_is_entered_in_error_never_a_reason_to_reach_out() -> None:
    deleted = events(siu("S17"))[1]
    assert deleted.reason_code is CancellationReason.entered_in_error


def test_a_cancellation_without_a_start_uses_the_last_known_one_or_is_refused() -> None:
    bare = siu("S15", control="M3", start="", sent="20261122090000-0600")
    refused = read(bare)
    assert refused.mapped is not None  # the start is only missing once history is known
    with pytest.raises(Exception, match="TQ1-7: required"):
        finalize(refused.mapped, {})
    history: dict[str, list[AppointmentVersion]] = {}
    events(siu(), history)
    assert events(bare, history)[1].start == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "loc", "code", "reject"),
    [
        (siu(pid3=""), "PID-3", "101", False),
        (siu(start="2026-11-28"), "TQ1-7", "102", False),
        (siu(start="20261128"), "TQ1-7", "102", False),  # a day without a time of day
        (siu(version="3.0"), "MSH-12", "203", True),
        (siu().replace("SIU^S12^SIU_S12", "ORU^R01"), "MSH-9", "200", True),
        (siu().replace("SIU^S12^SIU_S12", "SIU^S99"), "MSH-9", "201", True),
        (siu().replace("|M1|P|", "||P|"), "MSH-10", "101", False),
        (siu().replace("\rSCH|", "\rsch|"), "segment 2", "100", False),
    ],
)
def test_bad_messages_are_refused_naming_segment_and_field(
    message: str, loc: str, code: str, reject: bool
) -> None:
    sub = read(message)
    assert sub.refused is not None
    first = sub.refused.problems[0]
    assert (first.loc, first.code, sub.refused.reject) == (loc, code, reject)
    assert "MRN-7" not in first.msg and "Doe" not in first.msg


def test_the_api_key_in_msh_8_is_never_stored() -> None:
    key = "rvk_0123456789abcdef_" + "x" * 43
    sub = read(siu(security=key))
    assert key.encode() not in sub.raw
    assert redacted(siu(security=key)) == siu()


def test_a_resend_with_a_new_timestamp_is_the_same_message_but_new_content_is_not() -> None:
    first, resent = read(siu()), read(siu(sent="20261120093000-0600"))
    assert (first.source_key, first.fingerprint) == (resent.source_key, resent.fingerprint)
    changed = read(siu(start="20261129100000-0600"))
    assert changed.source_key == first.source_key and changed.fingerprint != first.fingerprint


def test_an_ack_echoes_the_control_id_and_a_nak_names_segment_field_and_code() -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    ack = build_ack(siu(), "AA", now=now).split("\r")
    assert (
        ack[0]
        == "MSH|^~\\&|REVISIT|REVISIT|EMA|DERM|20261120150000+0000||ACK^S12^ACK|ACKM1|P|2.5.1"
    )
    assert ack[1] == "MSA|AA|M1"
    problems = read(siu(pid3="")).refused.problems  # type: ignore[union-attr]
    nak = build_ack(siu(pid3=""), "AE", problems, now=now).split("\r")
    assert nak[1].startswith("MSA|AE|M1|PID-3: required")
    assert nak[2].startswith("ERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3: ")


def test_an_older_version_gets_its_error_in_err_1_and_separators_are_escaped() -> None:
    problems = read(siu(pid3="", version="2.3")).refused.problems  # type: ignore[union-attr]
    nak = build_ack(siu(pid3="", version="2.3"), "AE", problems).split("\r")
    assert nak[2] == "ERR|PID^1^3^101&Required field missing&HL70357"
    text = build_ack(siu(), "AR", [type(problems[0])("MSH-9", "A^B|C")]).split("\r")[1]
    assert text == "MSA|AR|M1|MSH-9: A\\S\\B\\F\\C"


def test_something_that_is_not_hl7_at_all_still_gets_a_nak() -> None:
    nak = build_ack("hello", "AR", []).split("\r")
    assert nak[0].startswith("MSH|^~\\&|") and nak[1] == "MSA|AR|"
