"""Cases: insert a raised case, lock and save one, and the queue staff work from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import Case, CaseState
from services.escalation.repository import SCHEMA
from shared.events.escalations import CaseType, Outcome, Severity

_MUTABLE = (
    "state",
    "rule_id",
    "rotation_id",
    "responder_id",
    "attempt",
    "step",
    "ack_due_at",
    "page_at",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "outcome",
    "resume_outreach",
    "exhausted",
)
_CASE_COLUMNS = (
    "escalation_id, clinic_id, patient_key, case_type, severity, summary, raised_at, "
    + ", ".join(_MUTABLE)
    + ", raised_event_id, correlation_id"
)
_SEVERITY_RANK = (
    "CASE severity WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
)
_QUEUE_COLUMNS = (
    "escalation_id, clinic_id, patient_key, case_type, severity, summary, raised_at, state, "
    "rotation_id, responder_id, attempt, ack_due_at, page_at, first_paged_at, acknowledged_by, "
    "acknowledged_at, exhausted, source_message_id, sequence_id, service_line, channel"
)


def _params(case: Case) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(case, name) for name in _MUTABLE}
    values["state"] = case.state.value
    values["outcome"] = case.outcome.value if case.outcome else None
    return values


async def insert_raised(session: AsyncSession, case: Case, extra: Mapping[str, Any]) -> bool:
    """Store a newly raised case; False if this escalation id is already known."""
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.cases (escalation_id, clinic_id, patient_key, case_type, "
                "severity, summary, raised_at, state, source_message_id, sequence_id, "
                "service_line, channel, raised_event_id, correlation_id, updated_at) VALUES "
                "(:e, :c, :p, :t, :s, :sum, :at, :state, :src, :seq, :line, :channel, :raised, "
                ":corr, :at) ON CONFLICT (escalation_id) DO NOTHING RETURNING escalation_id"
            ),
            {
                "e": case.escalation_id,
                "c": case.clinic_id,
                "p": case.patient_key,
                "t": case.case_type.value,
                "s": case.severity.value,
                "sum": case.summary,
                "at": case.raised_at,
                "state": case.state.value,
                "src": extra.get("source_message_id"),
                "seq": extra.get("sequence_id"),
                "line": extra.get("service_line"),
                "channel": extra.get("channel"),
                "raised": case.raised_event_id,
                "corr": case.correlation_id,
            },
        )
    ).first()
    return row is not None


def _case(row: Any) -> Case:
    m = row._mapping
    return Case(
        escalation_id=m["escalation_id"],
        clinic_id=m["clinic_id"],
        patient_key=m["patient_key"],
        case_type=CaseType(m["case_type"]),
        severity=Severity(m["severity"]),
        summary=m["summary"],
        raised_at=m["raised_at"],
        state=CaseState(m["state"]),
        rule_id=m["rule_id"],
        rotation_id=m["rotation_id"],
        responder_id=m["responder_id"],
        attempt=m["attempt"],
        step=m["step"],
        ack_due_at=m["ack_due_at"],
        page_at=m["page_at"],
        acknowledged_by=m["acknowledged_by"],
        acknowledged_at=m["acknowledged_at"],
        resolved_by=m["resolved_by"],
        resolved_at=m["resolved_at"],
        outcome=Outcome(m["outcome"]) if m["outcome"] else None,
        resume_outreach=m["resume_outreach"],
        exhausted=m["exhausted"],
        raised_event_id=m["raised_event_id"],
        correlation_id=m["correlation_id"],
    )


async def lock(
    session: AsyncSession, escalation_id: str, *, skip_locked: bool = False
) -> Case | None:
    """The case, locked for this transaction (API actions and timers serialize on it).

    ``skip_locked``: None instead of waiting when someone else holds the case.
    """
    skip = " SKIP LOCKED" if skip_locked else ""
    row = (
        await session.execute(
            text(
                f"SELECT {_CASE_COLUMNS} FROM {SCHEMA}.cases WHERE escalation_id = :e "
                f"FOR UPDATE{skip}"
            ),
            {"e": escalation_id},
        )
    ).first()
    return _case(row) if row is not None else None


async def exists(session: AsyncSession, escalation_id: str) -> bool:
    row = (
        await session.execute(
            text(f"SELECT 1 FROM {SCHEMA}.cases WHERE escalation_id = :e"), {"e": escalation_id}
        )
    ).first()
    return row is not None


async def patient_of(session: AsyncSession, escalation_id: str) -> str | None:
    found = await session.execute(
        text(f"SELECT patient_key FROM {SCHEMA}.cases WHERE escalation_id = :e"),
        {"e": escalation_id},
    )
    return found.scalar()


async def get(session: AsyncSession, escalation_id: str) -> Case | None:
    row = (
        await session.execute(
            text(f"SELECT {_CASE_COLUMNS} FROM {SCHEMA}.cases WHERE escalation_id = :e"),
            {"e": escalation_id},
        )
    ).first()
    return _case(row) if row is not None else None


async def save(session: AsyncSession, case: Case, now: datetime) -> None:
    sets = ", ".join(f"{name} = :{name}" for name in _MUTABLE)
    await session.execute(
        text(f"UPDATE {SCHEMA}.cases SET {sets}, updated_at = :now WHERE escalation_id = :e"),
        {**_params(case), "now": now, "e": case.escalation_id},
    )


async def store_note(session: AsyncSession, escalation_id: str, note: str) -> None:
    await session.execute(
        text(f"UPDATE {SCHEMA}.cases SET note = :n WHERE escalation_id = :e"),
        {"n": note, "e": escalation_id},
    )


async def mark_paged(session: AsyncSession, escalation_id: str, attempt: int, at: datetime) -> bool:
    """Record that page ``attempt`` reached someone; True the first time, while still paging."""
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.cases SET last_paged_attempt = :a, "
                "first_paged_at = COALESCE(first_paged_at, :at) WHERE escalation_id = :e "
                "AND attempt = :a AND last_paged_attempt < :a AND state = 'paging' "
                "RETURNING escalation_id"
            ),
            {"a": attempt, "at": at, "e": escalation_id},
        )
    ).first()
    return row is not None


async def queue(
    session: AsyncSession,
    clinics: Iterable[str] | None,
    *,
    states: Iterable[str],
    severity: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Cases in ``states``, most severe first, then oldest; ``clinics`` None means all."""
    where = ["state = ANY(:states)"]
    params: dict[str, Any] = {"states": list(states), "n": limit}
    if clinics is not None:
        where.append("clinic_id = ANY(:clinics)")
        params["clinics"] = sorted(clinics)
    if severity is not None:
        where.append("severity = :severity")
        params["severity"] = severity
    rows = (
        await session.execute(
            text(
                f"SELECT {_QUEUE_COLUMNS} FROM {SCHEMA}.cases WHERE {' AND '.join(where)} "
                f"ORDER BY exhausted DESC, {_SEVERITY_RANK}, raised_at, escalation_id LIMIT :n"
            ),
            params,
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def detail(session: AsyncSession, escalation_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"SELECT {_QUEUE_COLUMNS}, rule_id, resolved_by, resolved_at, outcome, "
                f"resume_outreach, note FROM {SCHEMA}.cases WHERE escalation_id = :e"
            ),
            {"e": escalation_id},
        )
    ).first()
    return dict(row._mapping) if row is not None else None
