"""Messenger ops API: a patient's conversation, contacts and consent ledger; the practice's
details; messages whose fate is unknown (the sandbox's routes: ``api_sandbox.py``).

Every route needs a staff token and is limited to the clinics in its scope; a refusal says why
without saying anything about another clinic's data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from services.messenger import conversations, leases, repository
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain.summary import ReplySummary, conversation_line
from services.messenger.practices import Practice
from shared.auth import Admin, CurrentPrincipal, Operator, require_clinic
from shared.events.common import Channel, Purpose, TimeZoneName
from shared.events.envelope import new_event
from shared.events.messages import ConsentScope, OptedIn, OptedOut, RecordedVia
from shared.ids import ClinicId, PatientKey, clinic_of
from shared.runtime import Runtime

router = APIRouter()


def _parts(request: Request) -> tuple[Runtime, MessengerContext]:
    runtime: Runtime = request.app.state.runtime
    return runtime, runtime.extras["messenger"]


READING_FIELDS = (
    *("message_id", "patient_key", "channel", "received_at", "body", "intent", "barrier"),
    *("red_flags", "consent", "safety", "confidence", "needs_person", "summary", "reading"),
)


def conversation_summary(messages: list[dict[str, Any]], sequence_id: str | None) -> str | None:
    """One line for the conversation: the replies about the current sequence (all of them
    when there is none), summarised from the patient's own words."""
    replies = [
        ReplySummary(**m["reading"]["summary"])
        for m in messages
        if m["direction"] == "inbound"
        and isinstance(m.get("reading"), dict)
        and "summary" in m["reading"]
        and (sequence_id is None or m["sequence_id"] == sequence_id)
    ]
    return conversation_line(replies)


# --- patients ----------------------------------------------------------------------------------


@router.get("/patients/{patient_key}/conversation", tags=["patients"])
async def patient_conversation(
    request: Request, principal: CurrentPrincipal, patient_key: PatientKey
) -> dict[str, Any]:
    """Every message to and from the patient (reply words are shown here and nowhere else)."""
    require_clinic(principal, clinic_of(patient_key))
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        messages = await conversations.conversation(session, patient_key)
        state = await conversations.load_state(session, patient_key)
    return {
        "patient_key": patient_key,
        "sequence_id": state.sequence_id,
        "summary": conversation_summary(messages, state.sequence_id),
        "open_offer": [{"slot_id": s.slot_id, "start": s.start} for s in state.offer],
        "messages": messages,
    }


@router.get("/replies/{message_id}", tags=["patients"])
async def reply_reading(
    request: Request,
    principal: CurrentPrincipal,
    message_id: Annotated[str, Path(min_length=1, max_length=100)],
) -> dict[str, Any]:
    """One reply as a person reads it from a case (the case carries this id): the patient's
    words, the one-line summary of them and what each layer read."""
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        row = await conversations.stored_reply(session, message_id)
    # Another clinic's reply reads as missing: a 403 would say the id exists elsewhere.
    if row is None or row["clinic_id"] is None or not principal.may_access(row["clinic_id"]):
        raise HTTPException(404, "no reply with this id")
    return {k: row[k] for k in READING_FIELDS}


@router.get("/patients/{patient_key}/contacts", tags=["patients"])
async def patient_contacts(
    request: Request, principal: CurrentPrincipal, patient_key: PatientKey
) -> dict[str, Any]:
    require_clinic(principal, clinic_of(patient_key))
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        row = await repository.contact_row(session, patient_key)
    if row is None:
        raise HTTPException(404, "no contact card for this patient")
    return {"patient_key": patient_key, "contact": row}


@router.get("/patients/{patient_key}/consent", tags=["patients"])
async def patient_consent(
    request: Request, principal: CurrentPrincipal, patient_key: PatientKey
) -> dict[str, Any]:
    """The consent ledger: who changed what, when, and from which message."""
    require_clinic(principal, clinic_of(patient_key))
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        ledger = await repository.consent_ledger(session, patient_key)
    return {"patient_key": patient_key, "ledger": ledger}


class ConsentBody(BaseModel):
    channel: Channel | None = None  # None: every channel
    purpose: Purpose = Purpose.care
    granted: bool
    reason: str | None = Field(
        default=None,
        min_length=3,
        max_length=500,
        description="why; required to undo an opt-out the patient made themselves",
    )


@router.post("/patients/{patient_key}/consent", tags=["patients"], status_code=201)
async def record_patient_consent(
    request: Request, principal: Operator, patient_key: PatientKey, body: ConsentBody
) -> dict[str, Any]:
    """Staff record a consent change the patient made by phone or at the front desk."""
    clinic_id = clinic_of(patient_key)
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        if body.granted and body.purpose is Purpose.care and not body.reason:
            channels = [body.channel] if body.channel else [Channel.sms, Channel.email]
            if await repository.stopped_by_patient(session, patient_key, channels):
                raise HTTPException(
                    422, "reason: required to undo an opt-out the patient made themselves"
                )
        await repository.record_consent(
            session,
            clinic_id=clinic_id,
            patient_key=patient_key,
            channel=body.channel,
            purpose=body.purpose,
            granted=body.granted,
            via=RecordedVia.staff.value,
            actor=f"staff:{principal.subject}",
            at=now,
            note=body.reason,
        )
        scope = ConsentScope.marketing if body.purpose is Purpose.marketing else ConsentScope.all
        kind = OptedIn if body.granted else OptedOut
        event = kind(channel=body.channel, scope=scope, recorded_via=RecordedVia.staff)
        await runtime.outbox.stage(
            session,
            [new_event(event, clinic_id=clinic_id, patient_key=patient_key, occurred_at=now)],
        )
        ledger = await repository.consent_ledger(session, patient_key)
    return {"patient_key": patient_key, "ledger": ledger}


@router.get("/consent/held", tags=["patients"])
async def held_consent(
    request: Request,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """EHR consent updates held back because the patient opted out themselves: a person
    checks each with the patient (and records a change with a reason if it is right)."""
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        held = await repository.held_consent(session, clinic_id, limit)
    return {"clinic_id": clinic_id, "held": held}


# --- practice ----------------------------------------------------------------------------------


class PracticeBody(BaseModel):
    name: str = Field(min_length=2, max_length=40)
    phone: str = Field(min_length=3, max_length=16)
    booking_url: str | None = Field(default=None, max_length=40, pattern=r"^https?://\S+$")
    sms_number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    email_address: str | None = Field(default=None, max_length=254)
    time_zone: TimeZoneName | None = None


@router.get("/practices/{clinic_id}", tags=["practice"])
async def get_practice(
    request: Request, principal: CurrentPrincipal, clinic_id: ClinicId
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        found = await practices_store.practices(session, [clinic_id])
    if clinic_id not in found:
        raise HTTPException(404, "this clinic has no practice details yet")
    return {"clinic_id": clinic_id, **found[clinic_id].__dict__}


@router.put("/practices/{clinic_id}", tags=["practice"])
async def put_practice(
    request: Request, principal: Admin, clinic_id: ClinicId, body: PracticeBody
) -> dict[str, Any]:
    """The names and numbers templates use (lengths fit the SMS length rule)."""
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    practice = Practice(**body.model_dump())
    async with runtime.sessions() as session, session.begin():
        await practices_store.save_practice(session, clinic_id, practice)
    return {"clinic_id": clinic_id, **practice.__dict__}


class ProviderBody(BaseModel):
    display_name: str = Field(min_length=2, max_length=30, description='e.g. "Dr. Rivera"')


@router.put("/practices/{clinic_id}/providers/{provider_id}", tags=["practice"])
async def put_provider(
    request: Request,
    principal: Admin,
    clinic_id: ClinicId,
    provider_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^\S+$")],
    body: ProviderBody,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session, session.begin():
        await practices_store.save_provider(session, clinic_id, provider_id, body.display_name)
    return {"clinic_id": clinic_id, "provider_id": provider_id, "display_name": body.display_name}


@router.get("/sends", tags=["practice"])
async def sends(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["unknown", "failed", "queued", "sending", "blocked"] = "unknown",
    clinic_id: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Messages by status: ``unknown`` ones may or may not have reached the patient after a
    crash or timeout the provider could not settle; a person checks them (never re-sent)."""
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
    elif principal.clinics is not None:
        raise HTTPException(403, "name a clinic_id in your scope")
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        rows = await leases.listing(session, clinic_id, status)
    return {"status": status, "messages": rows}
