"""Patient histories (one JSONB fact document each) and the rows derived from them.

Derived rows are replaced whole for every patient whose history changed, in the same
transaction as the history and the inbox row, so the read model always matches the facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from services.metrics.domain.attribution import RULES_VERSION, Derived
from services.metrics.domain.history import PatientHistory
from services.metrics.repository import SCHEMA

_KEYS = bindparam("keys", type_=ARRAY(Text()))
DERIVED_TABLES = ("episodes", "replies", "opt_outs", "escalations")


async def lock_histories(
    session: AsyncSession, keys: Mapping[str, str]
) -> dict[str, PatientHistory]:
    """Load (creating empty ones) and row-lock the histories of ``keys`` (patient -> clinic).

    Locked in patient-key order: two replicas handling the same patients from different topics
    wait for each other instead of overwriting each other's facts.
    """
    ordered = sorted(keys.items())
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.histories (patient_key, clinic_id, doc) "
            "VALUES (:k, :c, CAST(:doc AS jsonb)) ON CONFLICT (patient_key) DO NOTHING"
        ),
        [
            {"k": k, "c": c, "doc": PatientHistory(clinic_id=c, patient_key=k).model_dump_json()}
            for k, c in ordered
        ],
    )
    rows = await session.execute(
        text(
            f"SELECT patient_key, doc FROM {SCHEMA}.histories WHERE patient_key = ANY(:keys) "
            "ORDER BY patient_key FOR UPDATE"
        ).bindparams(_KEYS),
        {"keys": [k for k, _ in ordered]},
    )
    return {r[0]: PatientHistory.model_validate(r[1]) for r in rows}


async def load_histories(session: AsyncSession, keys: Sequence[str]) -> list[PatientHistory]:
    rows = await session.execute(
        text(
            f"SELECT doc FROM {SCHEMA}.histories WHERE patient_key = ANY(:keys) "
            "ORDER BY patient_key FOR UPDATE"
        ).bindparams(_KEYS),
        {"keys": list(keys)},
    )
    return [PatientHistory.model_validate(r[0]) for r in rows]


async def save_histories(session: AsyncSession, histories: Iterable[PatientHistory]) -> None:
    params = [{"k": h.patient_key, "doc": h.model_dump_json()} for h in histories]
    if params:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.histories SET doc = CAST(:doc AS jsonb), updated_at = now() "
                "WHERE patient_key = :k"
            ),
            params,
        )


async def stale_patients(session: AsyncSession, window_days: int, limit: int) -> list[str]:
    """Patients whose derived rows were built with another window or older rules."""
    rows = await session.execute(
        text(
            f"SELECT DISTINCT patient_key FROM {SCHEMA}.episodes "
            "WHERE window_days <> :w OR rules_version <> :v LIMIT :n"
        ),
        {"w": window_days, "v": RULES_VERSION, "n": limit},
    )
    return [r[0] for r in rows]


async def replace_derived(
    session: AsyncSession, derived: Sequence[tuple[PatientHistory, Derived]], window_days: int
) -> None:
    keys = [h.patient_key for h, _ in derived]
    if not keys:
        return
    for table in DERIVED_TABLES:
        await session.execute(
            text(f"DELETE FROM {SCHEMA}.{table} WHERE patient_key = ANY(:keys)").bindparams(_KEYS),
            {"keys": keys},
        )
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in DERIVED_TABLES}
    for h, d in derived:
        key = {"patient_key": h.patient_key, "clinic_id": h.clinic_id}
        for e in d.episodes:
            rows["episodes"].append(
                {
                    **key,
                    "eligibility_id": e.eligibility_id,
                    "segment": e.segment,
                    "kind": e.kind,
                    "service_line": e.service_line,
                    "eligible_at": e.eligible_at,
                    "left_reason": e.left_reason,
                    "sequence_id": e.sequence_id,
                    "workflow_key": e.workflow_key,
                    "pilot_id": e.pilot_id,
                    "arm": e.arm,
                    "started_at": e.started_at,
                    "first_sent_at": e.first_sent_at,
                    "messages_sent": e.messages_sent,
                    "first_delivered_at": e.first_delivered_at,
                    "replied": e.replied,
                    "opted_out": e.opted_out,
                    "booked_at": e.outcome.first_booked_at,
                    "bookings": e.outcome.bookings,
                    "completed_visits": e.outcome.completed_visits,
                    "revenue_cents": e.outcome.revenue_cents,
                    "assigned_booked_at": e.assigned.first_booked_at,
                    "assigned_bookings": e.assigned.bookings,
                    "assigned_completed_visits": e.assigned.completed_visits,
                    "assigned_revenue_cents": e.assigned.revenue_cents,
                    "clicked_at": e.clicked_at,
                    "provider_id": e.provider_id,
                    "location_id": e.location_id,
                    "urgency": e.urgency,
                    "due_at": e.due_at,
                    "cancellation_reason": e.cancellation_reason,
                    "cancelled_by": e.cancelled_by,
                    "window_days": window_days,
                    "rules_version": RULES_VERSION,
                }
            )
        rows["replies"] += [{**key, **vars(r)} for r in d.replies]
        rows["opt_outs"] += [{**key, **vars(o)} for o in d.opt_outs]
        rows["escalations"] += [{**key, **vars(x)} for x in d.escalations]
    for table, params in rows.items():
        if params:
            columns = list(params[0])
            await session.execute(
                text(
                    f"INSERT INTO {SCHEMA}.{table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"
                ),
                params,
            )


async def save_plans(session: AsyncSession, plans: Mapping[str, tuple[str, str]]) -> None:
    """pilot id -> (clinic, the plan as JSON): the newest SequenceStarted's plan wins."""
    if plans:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.pilot_plans (pilot_id, clinic_id, plan) VALUES "
                "(:p, :c, CAST(:plan AS jsonb)) ON CONFLICT (pilot_id) DO UPDATE SET "
                "plan = EXCLUDED.plan, updated_at = now()"
            ),
            [{"p": p, "c": c, "plan": plan} for p, (c, plan) in sorted(plans.items())],
        )
