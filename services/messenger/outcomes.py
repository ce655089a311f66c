"""What happens to a queued message becomes events (MessageSent, MessageFailed ...), each
continuing the trace of the command behind it, and a provider's opt-out becomes ours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import queue, repository
from services.messenger.providers.base import OutgoingMessage
from shared.events import Envelope, Payload, new_event
from shared.events.common import Channel, Purpose
from shared.events.messages import (
    ConsentScope,
    FailureReason,
    MessageDelivered,
    MessageFailed,
    MessageSent,
    OptedOut,
    RecordedVia,
)
from shared.runtime import Runtime


def outgoing_message(row: dict[str, Any]) -> OutgoingMessage:
    ref = row.get("send_ref") or queue.send_ref(
        row["kind"], row["sequence_id"], row["step"], row["channel"], row["idempotency_key"]
    )
    return OutgoingMessage(
        message_id=row["message_id"],
        idempotency_key=ref,
        clinic_id=row["clinic_id"],
        patient_key=row["patient_key"],
        channel=Channel(row["channel"]),
        to=row["address"],
        body=row["body"],
        subject=row["subject"],
        trace_id=_trace_id(row["trace_headers"]),
        attempted_at=row["attempted_at"],
    )


Staged = list[tuple[Envelope[Any], dict[str, str]]]


def events_for(row: dict[str, Any], payloads: list[Payload], now: datetime) -> Staged:
    """Events about a queued message, each with the trace of the command behind it."""
    headers = dict(row["trace_headers"] or {})
    return [
        (
            new_event(
                payload,
                clinic_id=row["clinic_id"],
                patient_key=row["patient_key"],
                occurred_at=now,
                correlation_id=row["correlation_id"],
                causation_id=row["causation_id"],
            ),
            headers,
        )
        for payload in payloads
    ]


async def stage_for(
    runtime: Runtime,
    session: AsyncSession,
    row: dict[str, Any],
    payloads: Payload | list[Payload],
    now: datetime,
) -> None:
    """Stage events about one queued message (one statement pair)."""
    batch = events_for(row, payloads if isinstance(payloads, list) else [payloads], now)
    await runtime.outbox.stage_batch(session, batch)


async def provider_opt_out(
    runtime: Runtime, session: AsyncSession, row: dict[str, Any], now: datetime
) -> None:
    """The provider says the patient opted out with it (a carrier STOP): record it as ours."""
    channel = Channel(row["channel"])
    await repository.record_consent(
        session,
        clinic_id=row["clinic_id"],
        patient_key=row["patient_key"],
        channel=channel,
        purpose=Purpose.care,
        granted=False,
        via="provider",
        actor=f"provider:{row['provider']}",
        at=now,
    )
    await stage_for(
        runtime,
        session,
        row,
        OptedOut(channel=channel, scope=ConsentScope.all, recorded_via=RecordedVia.provider),
        now,
    )


def _trace_id(headers: dict[str, str] | None) -> str | None:
    parts = (headers or {}).get("traceparent", "").split("-")
    return parts[1] if len(parts) >= 4 else None


def sent_events(row: dict[str, Any], delivered: bool, now: datetime) -> Staged:
    """MessageSent (and MessageDelivered when the provider already knows) for an outreach step;
    answers in a conversation are not steps and report nothing."""
    if row["kind"] != "step":
        return []
    common = {
        "message_id": row["message_id"],
        "sequence_id": row["sequence_id"],
        "step": row["step"],
        "channel": Channel(row["channel"]),
    }
    payloads: list[Payload] = [
        MessageSent(
            **common,
            template_key=row["template_key"],
            purpose=Purpose(row["purpose"] or "care"),
            is_fallback=row["is_fallback"],
        )
    ]
    if delivered:
        payloads.append(MessageDelivered(**common))
    return events_for(row, payloads, now)


async def settle_sent(
    runtime: Runtime, session: AsyncSession, row: dict[str, Any], delivered: bool, now: datetime
) -> None:
    if row["kind"] != "step":
        return
    await queue.settle_claims(session, [(row["sequence_id"], row["step"], "sent", row["provider"])])
    await runtime.outbox.stage_batch(session, sent_events(row, delivered, now))


async def settle_failed(
    runtime: Runtime,
    session: AsyncSession,
    row: dict[str, Any],
    failure: FailureReason,
    *,
    permanent: bool,
    now: datetime,
    outcome: str = "failed",
) -> None:
    """The step's claim ends ``outcome`` (failed, or unknown: never re-sent) + MessageFailed."""
    if row["kind"] != "step":
        return
    await queue.settle_claims(
        session, [(row["sequence_id"], row["step"], outcome, row["provider"])]
    )
    failed = MessageFailed(
        message_id=row["message_id"],
        sequence_id=row["sequence_id"],
        step=row["step"],
        channel=Channel(row["channel"]),
        failure=failure,
        permanent=permanent,
    )
    await stage_for(runtime, session, row, failed, now)
