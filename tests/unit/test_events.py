"""Event schemas: every payload round-trips, lives on a topic, and refuses garbage clearly.

The factories below build one valid example of every registered event type; read them as the
quickest documentation of what each payload looks like. All values are synthetic.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.events import (
    TOPIC_OF,
    EventError,
    Payload,
    UnknownEventType,
    UnknownEventVersion,
    ehr,
    eligibility,
    envelope,
    escalations,
    messages,
    new_event,
    outreach,
    parse_event,
    register,
    registered_types,
    topic_for,
    upcaster,
)
from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Contact,
    ContactKind,
    ContactUse,
    EhrSource,
    Initiator,
    Purpose,
    RecordIdentifier,
    Segment,
    SegmentKind,
    ServiceCode,
    ServiceLine,
    ServicePerformed,
    SourceRecord,
    SourceRecordKind,
    SourceSystem,
)
from shared.events.pilot import CohortFilters, PilotPlan

T0 = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
D0 = date(2025, 3, 3)
CLINIC = "clinic-7"
PATIENT_KEY = f"{CLINIC}:pt-1001"


def _src(record_id: str = "rec-1") -> EhrSource:
    return EhrSource(
        system=SourceSystem.fhir, record_id=record_id, source_version="3", source_updated_at=T0
    )


def _appt() -> dict[str, Any]:
    return {
        "source": _src("appt-9"),
        "appointment_id": "appt-9",
        "start": T0 + timedelta(days=7),
        "service_line": ServiceLine.skin_check,
        "provider_id": "prov-2",
        "location_id": "loc-1",
        "duration_minutes": 15,
    }


def _freed() -> dict[str, Any]:
    return {
        "offer_id": "offer-1",
        "slot_id": "slot-1",
        "start": T0 + timedelta(days=1),
        "service_line": ServiceLine.skin_check,
        "provider_id": "dr-okafor",
        "location_id": None,
        "freed_at": T0,
        "price_cents": 18000,
        "currency": "USD",
    }


def _msg() -> dict[str, Any]:
    return {"message_id": "msg-1", "sequence_id": "seq-1", "step": 1, "channel": Channel.sms}


FACTORIES: dict[str, Callable[[], Payload]] = {
    "PatientUpserted": lambda: ehr.PatientUpserted(
        source=_src("pt-1001"),
        given_name="Avery",
        contacts=(
            Contact(kind=ContactKind.phone, value="+15555550123", use=ContactUse.mobile, rank=1),
            Contact(kind=ContactKind.email, value="avery@example.test", rank=2),
        ),
        preferred_language="es-US",
        time_zone="America/Chicago",
        identifiers=(RecordIdentifier(value="MRN-1001", assigner="DERM1", type="MR"),),
    ),
    "ConsentChanged": lambda: ehr.ConsentChanged(
        source=_src(), purpose=Purpose.marketing, channel=Channel.email, status="granted"
    ),
    "AppointmentBooked": lambda: ehr.AppointmentBooked(**_appt()),
    "AppointmentRescheduled": lambda: ehr.AppointmentRescheduled(
        **_appt(), previous_start=T0, rescheduled_by=Initiator.patient
    ),
    "AppointmentCancelled": lambda: ehr.AppointmentCancelled(
        **_appt(),
        cancelled_by=Initiator.patient,
        reason_code=ehr.CancellationReason.schedule_conflict,
        reason_text="Called to cancel, will call back",
    ),
    "AppointmentNoShow": lambda: ehr.AppointmentNoShow(**_appt()),
    "AppointmentKept": lambda: ehr.AppointmentKept(**_appt(), arrived_at=T0 + timedelta(days=7)),
    "VisitCompleted": lambda: ehr.VisitCompleted(
        source=_src("enc-4"),
        visit_id="enc-4",
        appointment_id="appt-9",
        completed_at=T0,
        provider_id="prov-2",
        location_id="loc-1",
        services=(
            ServicePerformed(
                code="64612",
                system="cpt",
                display="Neurotoxin injection",
                service_line=ServiceLine.neurotoxin,
                charge_cents=45_000,
                currency="USD",
            ),
        ),
    ),
    "FollowUpRecommended": lambda: ehr.FollowUpRecommended(
        source=_src("plan-3"),
        follow_up_id="fu-3",
        visit_id="enc-4",
        recommended_on=D0,
        service_line=ServiceLine.skin_check,
        interval_days=182,
        urgency=ClinicalUrgency.routine,
        reason_text="Full skin exam in 6 months",
    ),
    "TreatmentPlanUpdated": lambda: ehr.TreatmentPlanUpdated(
        source=_src("plan-5"),
        plan_id="plan-5",
        service_line=ServiceLine.chemical_peel,
        sessions_planned=4,
        sessions_completed=1,
        interval_days=28,
        last_session_on=D0,
    ),
    "TreatmentRecommended": lambda: ehr.TreatmentRecommended(
        source=_src("rec-6"),
        recommendation_id="rec-6",
        visit_id="enc-5",
        recommended_on=D0,
        service_line=ServiceLine.laser,
        treatment=ServiceCode(code="LASER-IPL", system="local"),
        start_within_days=30,
        sessions_estimated=3,
    ),
    "PatientQuestionReceived": lambda: ehr.PatientQuestionReceived(
        source=_src("q-8"),
        question_id="q-8",
        received_via=ehr.QuestionChannel.portal,
        service_line=ServiceLine.acne,
        review_recommended=True,
        review_within_days=14,
    ),
    "ExperienceFeedbackRecorded": lambda: ehr.ExperienceFeedbackRecorded(
        source=_src("fb-2"),
        feedback_id="fb-2",
        visit_id="enc-4",
        sentiment=ehr.Sentiment.poor,
        score=3,
        topics=(ehr.FeedbackTopic.wait_time,),
    ),
    "PatientBecameEligible": lambda: eligibility.PatientBecameEligible(
        eligibility_id="elig-1",
        segment=Segment.follow_up_not_booked,
        kind=SegmentKind.recall,
        service_line=ServiceLine.skin_check,
        reason="6-month skin check recommended at the visit on 2025-03-03",
        source_record=SourceRecord(kind=SourceRecordKind.follow_up, id="fu-3"),
        opens_on=D0 + timedelta(days=168),
        closes_on=D0 + timedelta(days=240),
        needs_marketing_consent=False,
        rebooked_by=eligibility.RebookedBy(service_lines=(ServiceLine.skin_check,)),
    ),
    "PatientLeftSegment": lambda: eligibility.PatientLeftSegment(
        eligibility_id="elig-1",
        segment=Segment.follow_up_not_booked,
        kind=SegmentKind.recall,
        service_line=ServiceLine.skin_check,
        reason=eligibility.LeftReason.booked,
        source_record=SourceRecord(kind=SourceRecordKind.appointment, id="appt-9"),
    ),
    "SequenceStarted": lambda: outreach.SequenceStarted(
        sequence_id="seq-1",
        eligibility_id="elig-1",
        segment=Segment.follow_up_not_booked,
        kind=SegmentKind.recall,
        service_line=ServiceLine.skin_check,
        workflow_key="follow-up.v1",
        purpose=Purpose.care,
        steps_planned=3,
        pilot_id="pilot-1",
        pilot_plan=PilotPlan(
            segment=Segment.follow_up_not_booked,
            cohort=CohortFilters(service_lines=(ServiceLine.skin_check,), max_age_days=30),
            starts_at=T0 - timedelta(days=7),
            launched_at=T0,
            ends_at=T0 + timedelta(days=23),
        ),
    ),
    "StepScheduled": lambda: outreach.StepScheduled(
        sequence_id="seq-1",
        step=1,
        channel=Channel.sms,
        template_key="follow-up.first",
        scheduled_for=T0,
        expires_at=T0 + timedelta(days=3),
    ),
    "SequenceStopped": lambda: outreach.SequenceStopped(
        sequence_id="seq-1", reason=outreach.StopReason.booked, steps_sent=2
    ),
    "SequenceCompleted": lambda: outreach.SequenceCompleted(sequence_id="seq-1", steps_sent=3),
    "SendStep": lambda: outreach.SendStep(
        sequence_id="seq-1",
        step=2,
        workflow_key="follow-up.v1",
        template_key="follow-up.second",
        channel=Channel.sms,
        fallback_channel=Channel.email,
        purpose=Purpose.care,
        clinical_urgency=ClinicalUrgency.routine,
        segment=Segment.follow_up_not_booked,
        service_line=ServiceLine.skin_check,
        not_before=T0,
        expires_at=T0 + timedelta(days=2),
    ),
    "CancelPendingSends": lambda: outreach.CancelPendingSends(
        sequence_id="seq-1", reason=outreach.StopReason.opted_out
    ),
    "MessageSent": lambda: messages.MessageSent(
        **_msg(), template_key="follow-up.first", purpose=Purpose.care
    ),
    "MessageDelivered": lambda: messages.MessageDelivered(**_msg()),
    "BookingLinkClicked": lambda: messages.BookingLinkClicked(
        sequence_id="seq-1", step=2, message_id="msg-1"
    ),
    "SlotFreed": lambda: messages.SlotFreed(**_freed(), appointment_id="appt-9"),
    "SlotOffered": lambda: messages.SlotOffered(
        **_freed(), batch=1, source=messages.OfferSource.waitlist, channel=Channel.sms
    ),
    "SlotRefilled": lambda: messages.SlotRefilled(
        **_freed(), booking_request_id="req-1", refilled_at=T0 + timedelta(minutes=20)
    ),
    "MessageFailed": lambda: messages.MessageFailed(
        **_msg(),
        failure=messages.FailureReason.invalid_address,
        permanent=True,
        fallback_channel=Channel.email,
    ),
    "MessageBlocked": lambda: messages.MessageBlocked(
        sequence_id="seq-1",
        step=1,
        channel=Channel.sms,
        reason=messages.BlockReason.quiet_hours,
        retry_after=T0 + timedelta(hours=10),
    ),
    "ReplyReceived": lambda: messages.ReplyReceived(
        reply_message_id="in-77",
        channel=Channel.sms,
        sequence_id="seq-1",
        in_reply_to_message_id="msg-1",
        intent=messages.ReplyIntent.later,
        barrier=messages.Barrier.timing,
        snooze_until=D0 + timedelta(days=30),
        confidence=0.92,
    ),
    "OptedOut": lambda: messages.OptedOut(
        channel=Channel.sms,
        scope=messages.ConsentScope.all,
        recorded_via=messages.RecordedVia.reply_keyword,
        source_message_id="in-78",
    ),
    "OptedIn": lambda: messages.OptedIn(
        channel=None, scope=messages.ConsentScope.marketing, recorded_via="staff"
    ),
    "BookingRequested": lambda: messages.BookingRequested(
        booking_request_id="br-1",
        slot_id="slot-42",
        slot_start=T0 + timedelta(days=9),
        service_line=ServiceLine.skin_check,
        provider_id="prov-2",
        location_id="loc-1",
        sequence_id="seq-1",
        reply_message_id="in-79",
    ),
    "SnoozeRequested": lambda: messages.SnoozeRequested(
        sequence_id="seq-1", until=D0 + timedelta(days=30), reply_message_id="in-77"
    ),
    "EscalationRaised": lambda: escalations.EscalationRaised(
        escalation_id="esc-1",
        case_type=escalations.CaseType.clinical_question,
        severity=escalations.Severity.high,
        summary="Patient has a clinical question after a skin-check recall",
        source_message_id="in-80",
        sequence_id="seq-1",
        service_line=ServiceLine.skin_check,
        channel=Channel.sms,
    ),
    "EscalationPaged": lambda: escalations.EscalationPaged(
        escalation_id="esc-1", rotation_id="rot-derm", responder_id="staff-3", attempt=1
    ),
    "EscalationAcknowledged": lambda: escalations.EscalationAcknowledged(
        escalation_id="esc-1", responder_id="staff-3"
    ),
    "EscalationResolved": lambda: escalations.EscalationResolved(
        escalation_id="esc-1",
        outcome=escalations.Outcome.booked,
        resolved_by="staff-3",
        resume_outreach=False,
    ),
}

REGISTERED = sorted(registered_types())


def _wire(payload: Payload) -> dict[str, Any]:
    event = new_event(payload, clinic_id=CLINIC, patient_key=PATIENT_KEY, occurred_at=T0)
    doc: dict[str, Any] = json.loads(event.to_bytes())
    return doc


# --- every type ---------------------------------------------------------------------------------


def test_every_registered_type_has_an_example_factory() -> None:
    assert sorted(FACTORIES) == REGISTERED


@pytest.mark.parametrize("event_type", REGISTERED)
def test_every_event_survives_the_wire_unchanged(event_type: str) -> None:
    payload = FACTORIES[event_type]()
    event = new_event(payload, clinic_id=CLINIC, patient_key=PATIENT_KEY, occurred_at=T0)
    back = parse_event(event.to_bytes())
    assert back == event
    assert type(back.payload) is type(payload)


def test_every_type_has_a_topic_and_every_topic_carries_a_type() -> None:
    assert sorted(TOPIC_OF) == REGISTERED
    assert set(TOPIC_OF.values()) == set(topics.ALL)


def test_topic_for_names_the_topic_and_refuses_an_unknown_type() -> None:
    assert topic_for("SendStep") is topics.COMMANDS
    assert topic_for("ReplyReceived") is topics.REPLIES
    with pytest.raises(UnknownEventType, match="'NoSuchThing' has no topic"):
        topic_for("NoSuchThing")


# --- refusals -----------------------------------------------------------------------------------


def test_an_unknown_event_type_is_refused_by_name() -> None:
    doc = _wire(FACTORIES["AppointmentBooked"]())
    doc["type"] = "AppointmentTeleported"
    with pytest.raises(UnknownEventType, match="unknown event type 'AppointmentTeleported'"):
        parse_event(doc)


def test_a_newer_version_than_this_code_knows_is_refused() -> None:
    doc = _wire(FACTORIES["AppointmentBooked"]())
    doc["version"] = 2
    with pytest.raises(UnknownEventVersion, match=r"AppointmentBooked v2 is newer .*\(v1\)"):
        parse_event(doc)


def test_an_extra_payload_field_is_refused_naming_the_field() -> None:
    doc = _wire(FACTORIES["SequenceCompleted"]())
    doc["payload"]["nickname"] = "x"
    with pytest.raises(EventError, match="SequenceCompleted v1: nickname: Extra inputs"):
        parse_event(doc)


def test_a_naive_datetime_in_a_payload_is_refused() -> None:
    doc = _wire(FACTORIES["AppointmentBooked"]())
    doc["payload"]["start"] = "2025-03-10T15:30:00"
    with pytest.raises(EventError, match="start: Input should have timezone info"):
        parse_event(doc)
    with pytest.raises(ValidationError, match="timezone"):
        ehr.AppointmentBooked(**{**_appt(), "start": datetime(2025, 3, 10, 15, 30)})


def test_a_bad_contact_is_refused_without_echoing_it() -> None:
    doc = _wire(FACTORIES["PatientUpserted"]())
    doc["payload"]["contacts"][0]["value"] = "555-0123-call-me"
    with pytest.raises(EventError) as caught:
        parse_event(doc)
    assert "E.164" in str(caught.value)
    assert "555-0123" not in str(caught.value)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="IANA time zone"):
        ehr.PatientUpserted(source=_src(), time_zone="Mars/Olympus_Mons")


# --- rules the schemas enforce ------------------------------------------------------------------


def test_send_step_idempotency_key_is_sequence_and_step() -> None:
    step = FACTORIES["SendStep"]()
    assert isinstance(step, outreach.SendStep)
    assert step.idempotency_key == "seq-1:2"
    with pytest.raises(ValidationError, match="idempotency_key must be"):
        outreach.SendStep.model_validate({**step.model_dump(), "idempotency_key": "seq-1:3"})


def test_an_eligibility_has_either_a_window_or_a_moment_not_both() -> None:
    base = FACTORIES["PatientBecameEligible"]().model_dump()
    with pytest.raises(ValidationError, match="exactly one of opens_on"):
        eligibility.PatientBecameEligible.model_validate({**base, "due_at": T0})
    moment = {**base, "opens_on": None, "closes_on": None, "due_at": T0 + timedelta(hours=2)}
    assert eligibility.PatientBecameEligible.model_validate(moment).due_at is not None


def test_urgency_can_be_lowered_but_never_raised_above_the_plan() -> None:
    assert ClinicalUrgency.urgent.capped_at(ClinicalUrgency.soon) is ClinicalUrgency.soon
    assert ClinicalUrgency.routine.capped_at(ClinicalUrgency.urgent) is ClinicalUrgency.routine


def test_a_follow_up_needs_a_date_or_an_interval() -> None:
    base = FACTORIES["FollowUpRecommended"]().model_dump()
    with pytest.raises(ValidationError, match="due_on or interval_days"):
        ehr.FollowUpRecommended.model_validate({**base, "interval_days": None})


def test_a_plan_cannot_complete_more_sessions_than_planned() -> None:
    base = FACTORIES["TreatmentPlanUpdated"]().model_dump()
    with pytest.raises(ValidationError, match="exceeds sessions_planned"):
        ehr.TreatmentPlanUpdated.model_validate({**base, "sessions_completed": 5})


def test_choosing_a_slot_requires_the_slot() -> None:
    with pytest.raises(ValidationError, match="chosen_slot_id is required"):
        messages.ReplyReceived(
            reply_message_id="in-1", channel=Channel.sms, intent=messages.ReplyIntent.choose_slot
        )


def test_an_escalation_summary_that_looks_like_contact_details_is_refused() -> None:
    base = FACTORIES["EscalationRaised"]().model_dump()
    with pytest.raises(ValidationError, match="fixed phrase"):
        escalations.EscalationRaised.model_validate(
            {**base, "summary": "Call me back on 5555550123"}
        )


# --- versions -----------------------------------------------------------------------------------


def test_an_old_version_is_read_through_its_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    # Private copies of the registry, so the throwaway type vanishes after this test.
    monkeypatch.setattr(envelope, "_payloads", dict(envelope._payloads))
    monkeypatch.setattr(envelope, "_current", dict(envelope._current))
    monkeypatch.setattr(envelope, "_upcasters", dict(envelope._upcasters))

    @register("TestOnlyWidget", version=1)
    class WidgetV1(Payload):
        size: int

    @register("TestOnlyWidget", version=2)
    class WidgetV2(Payload):
        width: int
        height: int

    @upcaster("TestOnlyWidget", from_version=1)
    def _v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
        return {"width": body["size"], "height": body["size"]}

    doc = _wire(FACTORIES["SequenceCompleted"]())
    doc.update(type="TestOnlyWidget", version=1, payload={"size": 3})
    event = parse_event(doc)
    assert event.version == 2
    assert event.payload == WidgetV2(width=3, height=3)
    assert WidgetV1.event_version == 1


def test_a_version_1_patient_is_read_as_the_current_version_without_record_numbers() -> None:
    doc = _wire(FACTORIES["PatientUpserted"]())
    body = doc["payload"]
    body.pop("identifiers")
    body.pop("home_state", None)
    doc.update(version=1, payload=body)
    event = parse_event(doc)
    assert event.version == 3 and event.payload.identifiers == ()
    assert event.payload.home_state is None
    assert event.payload.given_name == "Avery"


def test_a_version_2_patient_keeps_its_record_numbers_and_has_no_home_state() -> None:
    doc = _wire(FACTORIES["PatientUpserted"]())
    body = doc["payload"]
    body.pop("home_state", None)
    doc.update(version=2, payload=body)
    event = parse_event(doc)
    assert event.version == 3 and event.payload.home_state is None
    assert event.payload.identifiers == FACTORIES["PatientUpserted"]().identifiers


def test_a_record_identifier_names_its_namespace() -> None:
    with pytest.raises(ValidationError, match="needs a system or an assigner"):
        RecordIdentifier(value="MRN-1")


# --- privacy ------------------------------------------------------------------------------------

PHI_NAME_PARTS = (
    "phone", "email", "birth", "dob", "diagnos", "body", "message_text", "given_name",
    "family_name", "address", "ssn", "comment",
)  # fmt: skip
ALLOWED_TO_CARRY_CONTACTS = {ehr.PatientUpserted, Contact}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    if model in seen or model in ALLOWED_TO_CARRY_CONTACTS:
        return []
    seen.add(model)
    names = []
    for name, field in model.model_fields.items():
        names.append(f"{model.__name__}.{name}")
        for nested in _models_in(field.annotation):
            names += _field_names(nested, seen)
    return names


def test_no_payload_outside_patient_upserted_has_a_phi_named_field() -> None:
    seen: set[type[BaseModel]] = set()
    names = [n for t in REGISTERED for n in _field_names(envelope.payload_class(t), seen)]
    assert "ReplyReceived.reply_message_id" in names  # the walk reached the payloads
    assert "VisitCompleted.source" in names
    offenders = [n for n in names if any(p in n.split(".")[1] for p in PHI_NAME_PARTS)]
    assert offenders == []


def test_the_phi_check_would_catch_a_nested_contact_field() -> None:
    class Leaky(BaseModel):
        phone_number: str

    class Carrier(Payload):
        who: Leaky | None = None

    names = _field_names(Carrier, set())
    assert "Leaky.phone_number" in names


def test_the_new_optional_facts_of_an_eligibility_are_checked() -> None:
    with pytest.raises(ValidationError, match="either any_service or service_lines"):
        eligibility.RebookedBy()
    assert eligibility.RebookedBy.of(None).lines is None
    missed = eligibility.MissedAppointment(no_show=True)
    assert missed.reason_code == "no_show"
    started = FACTORIES["SequenceStarted"]().model_dump()
    with pytest.raises(ValidationError, match="pilot_plan needs pilot_id"):
        outreach.SequenceStarted.model_validate({**started, "pilot_id": None})
