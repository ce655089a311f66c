"""The sandbox provider's routes: each phone's inbox, and replying as the patient.

Mounted only while the sandbox is the configured SMS or e-mail provider (``app.py``): with real
providers an operator must not be able to act as a patient (a START after a STOP, a booking, an
urgent page), which the consent ledger would record as the patient's own doing.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.messenger import inbound, repository
from services.messenger.api import _parts
from services.messenger.providers import sandbox
from shared.auth import CurrentPrincipal, Operator, require_clinic
from shared.events.common import Channel
from shared.ids import clinic_of
from shared.runtime import Runtime

router = APIRouter()


@router.get("/sandbox/messages", tags=["sandbox"], summary="The sandbox inbox of one patient")
async def sandbox_messages(
    request: Request,
    principal: CurrentPrincipal,
    patient_key: str = Query(min_length=3, max_length=200, pattern=r"^[^:]+:.+$"),
) -> dict[str, Any]:
    require_clinic(principal, clinic_of(patient_key))
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        messages = await sandbox.sandbox_messages(session, patient_key)
    return {"patient_key": patient_key, "messages": messages}


@router.get("/sandbox/inbox", tags=["sandbox"], summary="A phone's (or mailbox's) sandbox inbox")
async def sandbox_inbox(
    request: Request,
    principal: CurrentPrincipal,
    clinic_id: str = Query(min_length=1, max_length=100),
    address: str = Query(min_length=3, max_length=254, description="E.164 phone or e-mail"),
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        messages = await sandbox.sandbox_inbox(session, clinic_id, address)
    return {"clinic_id": clinic_id, "messages": messages}


@router.get(
    "/sandbox/feed", tags=["sandbox"], summary="Every sandbox message of a clinic, in order"
)
async def sandbox_feed(
    request: Request,
    principal: CurrentPrincipal,
    clinic_id: str = Query(min_length=1, max_length=100),
    after: int = Query(default=0, ge=0, description="the last `seq` already read"),
    limit: int = Query(default=500, ge=1, le=5000),
) -> dict[str, Any]:
    """What a whole practice's phones received and answered, for the simulator's patients:
    read from ``after`` and pass the returned ``next`` back to continue."""
    require_clinic(principal, clinic_id)
    runtime, _ = _parts(request)
    async with runtime.sessions() as session:
        messages = await sandbox.sandbox_feed(session, clinic_id, after, limit)
    nxt = messages[-1]["seq"] if messages else after
    return {"clinic_id": clinic_id, "messages": messages, "next": nxt}


class SandboxReply(BaseModel):
    clinic_id: str = Field(min_length=1, max_length=100)
    address: str | None = Field(default=None, min_length=3, max_length=254)
    patient_key: str | None = Field(default=None, min_length=3, max_length=200)
    channel: Channel = Channel.sms
    body: str = Field(min_length=1, max_length=1600)
    # A provider names each inbound message; a phone that sends the same one again (a webhook
    # replayed) names it again and the messenger recognises it. Omitted: a new message.
    provider_message_id: str | None = Field(
        default=None, min_length=3, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$"
    )


@router.post("/sandbox/reply", tags=["sandbox"], status_code=201)
async def sandbox_reply(
    request: Request, principal: Operator, reply: SandboxReply
) -> dict[str, Any]:
    """Reply as the patient, exactly as if their phone had answered through a provider."""
    require_clinic(principal, reply.clinic_id)
    if reply.patient_key and clinic_of(reply.patient_key) != reply.clinic_id:
        raise HTTPException(422, "patient_key must belong to clinic_id")
    runtime, ctx = _parts(request)
    async with runtime.sessions() as session, session.begin():
        address = reply.address
        if address is None and reply.patient_key:
            card = await repository.contact_card(session, reply.patient_key)
            address = card.address(reply.channel) if card else None
        if not address:
            raise HTTPException(422, "give an address, or a patient_key with a contact")
        result = await inbound.receive(
            runtime,
            ctx,
            session,
            inbound.InboundMessage(
                channel=reply.channel,
                provider="sandbox",
                provider_message_id=reply.provider_message_id or f"sbx-in-{uuid.uuid4().hex}",
                from_address=address,
                body=reply.body,
                clinic_id=reply.clinic_id,
                patient_key=reply.patient_key,
            ),
        )
    return {
        "message_id": result.message_id,
        "patient_key": result.patient_key,
        "understood_as": result.label,
    }
