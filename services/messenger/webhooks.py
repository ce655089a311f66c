"""Provider webhooks: Twilio inbound SMS and status callbacks, and an e-mail gateway's POST.

They carry no staff credential: each is authenticated by its provider's proof instead (Twilio's
``X-Twilio-Signature`` over the URL Twilio called and every form parameter; the e-mail
gateway's shared secret). A reply is stored and acted on before the 2xx is returned, so a
provider that gets no 2xx retries, and the retry finds the reply already there.
"""

from __future__ import annotations

import hmac
import re
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from services.messenger import inbound, leases
from services.messenger.context import MessengerContext
from services.messenger.outcomes import provider_opt_out, settle_sent, stage_for
from services.messenger.providers.twilio import (
    UNSUBSCRIBED,
    status_callback_outcome,
    validate_signature,
)
from shared.audit import note_patients, note_subject
from shared.events.common import Channel
from shared.events.messages import MessageDelivered, MessageFailed
from shared.runtime import Runtime

# A form post of at most 1,600 characters of text, a few media URLs and routing fields.
TWILIO_MAX_BODY_BYTES = 64 * 1024

router = APIRouter(tags=["webhooks"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _parts(request: Request) -> tuple[Runtime, MessengerContext]:
    runtime: Runtime = request.app.state.runtime
    return runtime, runtime.extras["messenger"]


async def _twilio_form(request: Request, ctx: MessengerContext) -> dict[str, str]:
    settings = ctx.settings
    if not settings.twilio_auth_token:
        raise HTTPException(404, "Twilio is not configured on this messenger")
    raw = (await request.body()).decode("utf-8", errors="replace")
    pairs = parse_qsl(raw, keep_blank_values=True)
    if settings.twilio_validate_signatures:
        # Twilio signs the public URL it called, which a proxy may have rewritten.
        if settings.public_url:
            url = settings.public_url.rstrip("/") + request.url.path
            if request.url.query:
                url += "?" + request.url.query
        else:
            url = str(request.url)
        signature = request.headers.get("x-twilio-signature")
        if not validate_signature(settings.twilio_auth_token, url, pairs, signature):
            raise HTTPException(403, "invalid X-Twilio-Signature")
    return dict(pairs)


@router.post("/webhooks/twilio/sms", summary="Twilio: a patient's SMS reply")
async def twilio_sms(request: Request) -> Response:
    runtime, ctx = _parts(request)
    form = await _twilio_form(request, ctx)
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    sender, to = form.get("From"), form.get("To")
    if not sid or not sender:
        raise HTTPException(400, "MessageSid and From are required")
    message = inbound.InboundMessage(
        channel=Channel.sms,
        provider="twilio",
        provider_message_id=sid,
        from_address=sender,
        to_address=to,
        body=form.get("Body", ""),
    )
    note_subject(request, "provider:twilio")
    async with runtime.sessions() as session, session.begin():
        received = await inbound.receive(runtime, ctx, session, message)
    if received.patient_key:
        note_patients(request, [received.patient_key])
    # Answers go out through the API (recorded, rate-limited), not as TwiML.
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post("/webhooks/twilio/status", summary="Twilio: delivery status of a message we sent")
async def twilio_status(request: Request) -> Response:
    runtime, ctx = _parts(request)
    form = await _twilio_form(request, ctx)
    sid, status = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus")
    if not sid or not status:
        raise HTTPException(400, "MessageSid and MessageStatus are required")
    outcome, failure, permanent = status_callback_outcome(status, form.get("ErrorCode"))
    ref = request.query_params.get("ref")
    if ref:
        # Any callback proves Twilio took the send it names, even if our create call never
        # heard back: bind the SID to it now, so the reconciler never sends it again.
        async with runtime.sessions() as session, session.begin():
            bound = await leases.bind_by_ref(session, "twilio", ref, sid, runtime.clock.now())
            if bound is not None:
                await settle_sent(runtime, session, bound, False, runtime.clock.now())
    if outcome == "pending":
        return Response(status_code=204)
    async with runtime.sessions() as session, session.begin():
        row = await leases.by_provider_id(session, "twilio", sid)
        if row is None or not await leases.provider_event_once(session, "twilio", sid, outcome):
            return Response(status_code=204)
        now = runtime.clock.now()
        if outcome == "failed" and form.get("ErrorCode") == str(UNSUBSCRIBED):
            await provider_opt_out(runtime, session, row, now)
        if row["kind"] == "step":
            common: dict[str, Any] = {
                "message_id": row["message_id"],
                "sequence_id": row["sequence_id"],
                "step": row["step"],
                "channel": Channel(row["channel"]),
            }
            if outcome == "delivered":
                await stage_for(runtime, session, row, MessageDelivered(**common), now)
            elif failure is not None:
                await stage_for(
                    runtime,
                    session,
                    row,
                    MessageFailed(**common, failure=failure, permanent=permanent),
                    now,
                )
    return Response(status_code=204)


class InboundEmail(BaseModel):
    """What an e-mail gateway posts for each e-mail received at the practice's reply address."""

    message_id: str = Field(min_length=3, max_length=300, description="the e-mail's Message-ID")
    sender: str = Field(alias="from", min_length=3, max_length=320)
    to: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=500)
    text: str = Field(default="", max_length=20_000, description="the plain-text body")
    in_reply_to: str | None = Field(default=None, max_length=300)


_QUOTE_START = re.compile(
    r"^(?:on .{0,200}wrote:|el .{0,200}escribi[oó]:|-+ ?original message ?-+|>)", re.I | re.M
)
_OUR_ID = re.compile(r"<([0-9a-f-]{36})@")


def reply_text(text: str, subject: str | None) -> str:
    """The patient's own words: quoted history and signatures cut off."""
    match = _QUOTE_START.search(text)
    body = (text[: match.start()] if match else text).strip()
    body = body.split("\n-- \n")[0].strip()
    if not body and subject and "unsubscribe" in subject.lower():
        return "UNSUBSCRIBE"
    return body[:2000]


@router.post("/webhooks/email/inbound", summary="E-mail gateway: a patient's e-mail reply")
async def email_inbound(request: Request, email: InboundEmail) -> dict[str, Any]:
    runtime, ctx = _parts(request)
    secret = ctx.settings.email_inbound_secret
    presented = request.headers.get("x-revisit-email-secret", "")
    if not secret or not hmac.compare_digest(secret.encode(), presented.encode()):
        raise HTTPException(401, "missing or wrong X-Revisit-Email-Secret")
    note_subject(request, "provider:email")
    sender = parseaddr(email.sender)[1]
    to = parseaddr(email.to or "")[1] or None
    if not sender:
        raise HTTPException(422, "from: not an e-mail address")
    async with runtime.sessions() as session, session.begin():
        patient_key = None
        if email.in_reply_to and (m := _OUR_ID.search(email.in_reply_to)):
            row = await leases.by_message_id(session, m.group(1))
            if row is not None and row["address"].lower() == sender.lower():
                patient_key = row["patient_key"]
        result = await inbound.receive(
            runtime,
            ctx,
            session,
            inbound.InboundMessage(
                channel=Channel.email,
                provider="email",
                provider_message_id=email.message_id,
                from_address=sender,
                to_address=to,
                body=reply_text(email.text, email.subject),
                patient_key=patient_key,
            ),
        )
    if result.patient_key:
        note_patients(request, [result.patient_key])
    return {
        "message_id": result.message_id,
        "matched": result.patient_key is not None,
        "duplicate": result.duplicate,
    }
