"""Building blocks for the escalation tests that run against a real database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.escalation.repository import SCHEMA
from shared.auth import Principal
from shared.events import new_event
from shared.events.envelope import Envelope
from shared.events.escalations import CaseType, EscalationRaised, Severity

SUMMARY = "Patient reports a new or changing mole after a skin-check recall"


def raised_event(
    clinic_id: str,
    *,
    case_type: CaseType = CaseType.red_flag,
    severity: Severity = Severity.urgent,
    at: datetime,
    escalation_id: str | None = None,
) -> Envelope[Any]:
    payload = EscalationRaised(
        escalation_id=escalation_id or f"esc-{uuid.uuid4().hex[:12]}",
        case_type=case_type,
        severity=severity,
        summary=SUMMARY,
        source_message_id=f"msg-{uuid.uuid4().hex[:8]}",
    )
    patient = f"{clinic_id}:pt-{uuid.uuid4().hex[:8]}"
    return new_event(payload, clinic_id=clinic_id, patient_key=patient, occurred_at=at)


def staff(subject: str, clinic_id: str, role: str = "operator") -> Principal:
    return Principal("staff", subject, role, frozenset({clinic_id}))  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy; that value (or the last one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(0.02)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql.format(s=SCHEMA)), params)
        return [dict(r._mapping) for r in result]


async def forget_clinics(engine: AsyncEngine, prefix: str) -> None:
    """Stop what tests left behind (timers, deliveries, unpublished events) for their clinics."""
    like = f"{prefix}%"
    async with engine.begin() as conn:
        await conn.execute(
            text(f"DELETE FROM {SCHEMA}.timers WHERE patient_key LIKE :p"), {"p": like}
        )
        await conn.execute(
            text(
                f"UPDATE {SCHEMA}.pages SET state = 'cancelled' WHERE clinic_id LIKE :p "
                "AND state = 'pending'"
            ),
            {"p": like},
        )
        await conn.execute(
            text(f"DELETE FROM {SCHEMA}.outbox WHERE message_key LIKE :p"), {"p": like}
        )
