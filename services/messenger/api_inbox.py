"""The staff inbox: conversations whose replies need a person (unclassified, questions, clinical
words, a named barrier), the patient's words with the system's reading, staff replies, handled,
assigned. Reading needs any role in the clinic; acting needs ``operator``.

A staff reply goes out through the same queue, dispatcher and send-time checks as every message
(``domain/staff_reply.py`` says which), and the dispatcher checks the opt-out once more at the
moment of sending. Who wrote it is recorded beside it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.messenger import conversations, inbox_store, queue, repository
from services.messenger.context import MessengerContext
from services.messenger.domain.checks import SendWindow
from services.messenger.domain.staff_reply import (
    check_staff_reply,
    confidence_of,
    needs_a_person,
    staff_reply_id,
)
from shared.audit import note_patients
from shared.auth import CurrentPrincipal, Operator, require_clinic
from shared.events.common import Channel
from shared.ids import PatientKey, clinic_of
from shared.runtime import Runtime

router = APIRouter(prefix="/inbox", tags=["inbox"])
StaffId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")]
NO_CONVERSATION = "no conversation with this patient in the clinics this credential covers"


def _parts(request: Request) -> tuple[Runtime, MessengerContext]:
    runtime: Runtime = request.app.state.runtime
    return runtime, runtime.extras["messenger"]


def _reading(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "intent": row["intent"],
        "barrier": row["barrier"],
        "red_flags": list(row["red_flags"] or []),
        "confidence": confidence_of(row["body"], row["intent"]) if row["body"] else None,
    }


@router.get("", summary="Conversations waiting for a person (or handled lately)")
async def inbox(
    request: Request,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str, Query(min_length=1, max_length=100)],
    view: Literal["waiting", "mine", "handled"] = "waiting",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        if view == "handled":
            handled = await inbox_store.handled(session, clinic_id, limit)
            note_patients(request, (str(c["patient_key"]) for c in handled))
            return {"clinic_id": clinic_id, "view": view, "conversations": handled}
        mine = principal.subject if view == "mine" else None
        rows = await inbox_store.waiting(session, clinic_id, assigned_to=mine, limit=limit)
    found = []
    for row in rows:
        found.append(
            {
                "patient_key": row["patient_key"],
                "message_id": row["message_id"],
                "channel": row["channel"],
                "words": row["body"],
                "received_at": row["received_at"],
                "reading": _reading(row),
                "waiting_replies": row["waiting_replies"],
                "waiting_since": row["waiting_since"],
                "red_flag": row["red_flag"],
                "assigned_to": row["assigned_to"],
            }
        )
    note_patients(request, (c["patient_key"] for c in found))  # whose words were shown
    return {"clinic_id": clinic_id, "view": view, "conversations": found}


@router.get("/conversations/{patient_key}", summary="A conversation as the inbox shows it")
async def conversation(
    request: Request, principal: CurrentPrincipal, patient_key: PatientKey
) -> dict[str, Any]:
    require_clinic(principal, clinic_of(patient_key))
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        messages = await conversations.conversation(session, patient_key)
        state = await inbox_store.state_of(session, patient_key) or {}
        written_by = await inbox_store.authors(session, patient_key)
    through = state.get("handled_through")
    waiting = False
    for m in messages:
        if m["direction"] == "inbound":
            m["reading"] = _reading(m)
            m["needs_a_person"] = needs_a_person(m["intent"], m["barrier"])
            open_now = through is None or m["at"] > through
            waiting = waiting or (m["needs_a_person"] and open_now)
        else:
            m["author"] = written_by.get(m["message_id"])  # None: the system wrote it
    return {
        "patient_key": patient_key,
        "assigned_to": state.get("assigned_to"),
        "handled_by": state.get("handled_by"),
        "handled_at": state.get("handled_at"),
        "waiting": waiting,
        "messages": messages,
    }


class StaffReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Staff's own words: stored with the message, never logged; checked in the route so that a
    # refusal never echoes them.
    body: str = Field(max_length=5000)
    reply_key: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    mark_handled: bool = True


@router.post(
    "/conversations/{patient_key}/replies", status_code=201, summary="Reply as staff (operator)"
)
async def reply(
    request: Request, principal: Operator, patient_key: PatientKey, body: StaffReply
) -> dict[str, Any]:
    clinic_id = clinic_of(patient_key)
    require_clinic(principal, clinic_id)
    runtime, ctx = _parts(request)
    now = runtime.clock.now()
    message_id = staff_reply_id(patient_key, body.reply_key)
    async with runtime.sessions() as session, session.begin():
        # Locked like the dispatcher locks it: an opt-out committing now is ordered before or
        # after this decision, never beside it.
        card = (await repository.contact_cards(session, [patient_key], lock=True)).get(patient_key)
        answered = await inbox_store.latest_inbound(session, patient_key)
        channel = Channel(answered["channel"]) if answered else Channel.sms
        # The hours of the patient's latest outreach (its clinic's policy), else the default
        # policy in the patient's (or the practice's default) zone.
        raw_window = await inbox_store.latest_send_window(session, patient_key)
        window = (
            SendWindow.from_json(raw_window)
            if raw_window is not None
            else SendWindow(time_zone=runtime.settings.revisit_default_time_zone)
        )
        refusal = check_staff_reply(card, body.body, channel, now, window)
        if refusal is not None:
            status = 422 if refusal.reason in ("empty", "too_long", "condition_word") else 409
            raise HTTPException(
                status,
                {
                    "reason": refusal.reason,
                    "message": refusal.message,
                    "retry_after": refusal.retry_after.isoformat() if refusal.retry_after else None,
                },
            )
        assert card is not None  # check_staff_reply refuses a missing card
        first = await inbox_store.record_staff_reply(
            session,
            message_id=message_id,
            clinic_id=clinic_id,
            patient_key=patient_key,
            in_reply_to=answered["message_id"] if answered else None,
            author=principal.subject,
            at=now,
        )
        if first:
            sandbox = answered is not None and answered["provider"] == "sandbox"
            provider = ctx.providers["sandbox"] if sandbox else ctx.provider_for(channel)
            state = await conversations.load_state(session, patient_key)
            await queue.enqueue(
                session,
                [
                    queue.QueuedMessage(
                        message_id=message_id,
                        idempotency_key=message_id,
                        clinic_id=clinic_id,
                        patient_key=patient_key,
                        kind="reply",  # the dispatcher re-checks the opt-out when it sends
                        channel=channel.value,
                        provider=provider.name,
                        sender=provider.sender,
                        address=str(card.address(channel)),
                        body=body.body.strip(),
                        subject="Re: your message" if channel is Channel.email else None,
                        created_at=now,
                        in_reply_to=answered["message_id"] if answered else None,
                        sequence_id=state.sequence_id,
                        purpose="care",
                    )
                ],
            )
        if body.mark_handled and answered is not None:
            await inbox_store.mark_handled(
                session, clinic_id, patient_key, answered["received_at"], principal.subject, now
            )
    return {"message_id": message_id, "status": "queued", "duplicate": not first}


@router.post("/conversations/{patient_key}/handled", summary="Mark handled (operator)")
async def mark_handled(
    request: Request, principal: Operator, patient_key: PatientKey
) -> dict[str, Any]:
    clinic_id = clinic_of(patient_key)
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        latest = await inbox_store.latest_inbound(session, patient_key)
        if latest is None:
            raise HTTPException(404, NO_CONVERSATION)
        await inbox_store.mark_handled(
            session, clinic_id, patient_key, latest["received_at"], principal.subject, now
        )
    return {"patient_key": patient_key, "handled_by": principal.subject, "handled_at": now}


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assigned_to: StaffId | None = None  # None: back to the whole team


@router.post("/conversations/{patient_key}/assign", summary="Assign to a colleague (operator)")
async def assign(
    request: Request, principal: Operator, patient_key: PatientKey, body: Assignment
) -> dict[str, Any]:
    clinic_id = clinic_of(patient_key)
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        if await inbox_store.latest_inbound(session, patient_key) is None:
            raise HTTPException(404, NO_CONVERSATION)
        await inbox_store.assign(
            session, clinic_id, patient_key, body.assigned_to, principal.subject, now
        )
    return {"patient_key": patient_key, "assigned_to": body.assigned_to}
