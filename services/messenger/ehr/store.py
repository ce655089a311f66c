"""This package's SQL: EHR connections, the patients' record numbers and EHR identities, staff
booking tasks and the appointments Revisit created. (The chart queue is in ``chart.py``.)"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.ehr.domain.capabilities import Capabilities
from services.messenger.ehr.domain.connection import Connection, ConnectionSettings
from shared.events.common import RecordIdentifier
from shared.events.ehr import PatientUpserted

SCHEMA = "messenger"


@dataclass(frozen=True)
class StoredConnection:
    connection: Connection
    updated_at: datetime
    updated_by: str
    capabilities_checked_at: datetime | None


def _connection(m: Any) -> StoredConnection:
    caps = m["capabilities"]
    return StoredConnection(
        Connection(
            clinic_id=m["clinic_id"],
            settings=ConnectionSettings.model_validate(m["settings"]),
            capabilities=Capabilities.model_validate(caps) if caps else None,
        ),
        m["updated_at"],
        m["updated_by"],
        m["capabilities_checked_at"],
    )


async def connection(session: AsyncSession, clinic_id: str) -> StoredConnection | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.ehr_connections WHERE clinic_id = :c"), {"c": clinic_id}
        )
    ).first()
    return _connection(row._mapping) if row else None


async def save_connection(
    session: AsyncSession, clinic_id: str, settings: ConnectionSettings, by: str
) -> None:
    """New settings forget the capabilities read for the old ones (another server, maybe)."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.ehr_connections (clinic_id, settings, updated_by) "
            "VALUES (:c, CAST(:s AS jsonb), :by) ON CONFLICT (clinic_id) DO UPDATE SET "
            "settings = EXCLUDED.settings, updated_by = EXCLUDED.updated_by, updated_at = now(), "
            "capabilities = CASE WHEN ehr_connections.settings->>'base_url' = "
            "EXCLUDED.settings->>'base_url' THEN ehr_connections.capabilities END"
        ),
        {"c": clinic_id, "s": settings.model_dump_json(), "by": by},
    )


async def save_capabilities(
    session: AsyncSession, clinic_id: str, capabilities: Capabilities, at: datetime
) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.ehr_connections SET capabilities = CAST(:caps AS jsonb), "
            "capabilities_checked_at = :at WHERE clinic_id = :c"
        ),
        {"c": clinic_id, "caps": capabilities.model_dump_json(), "at": at},
    )


async def delete_connection(session: AsyncSession, clinic_id: str) -> bool:
    result = await session.execute(
        text(f"DELETE FROM {SCHEMA}.ehr_connections WHERE clinic_id = :c RETURNING 1"),
        {"c": clinic_id},
    )
    return result.first() is not None


# --- record numbers and EHR identity ---------------------------------------------------------


async def save_identifiers(
    session: AsyncSession, clinic_id: str, patient_key: str, p: PatientUpserted
) -> None:
    """The newest record numbers win (an old update replayed late never overwrites)."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.ehr_patient_identifiers (patient_key, clinic_id, identifiers, "
            "source_updated_at) VALUES (:pk, :c, CAST(:ids AS jsonb), :at) "
            "ON CONFLICT (patient_key) DO UPDATE SET identifiers = EXCLUDED.identifiers, "
            "source_updated_at = EXCLUDED.source_updated_at "
            "WHERE ehr_patient_identifiers.source_updated_at <= EXCLUDED.source_updated_at"
        ),
        {
            "pk": patient_key,
            "c": clinic_id,
            "ids": json.dumps([i.model_dump(mode="json") for i in p.identifiers]),
            "at": p.source.source_updated_at,
        },
    )


async def identifiers(session: AsyncSession, patient_key: str) -> list[RecordIdentifier]:
    found = (
        await session.execute(
            text(
                f"SELECT identifiers FROM {SCHEMA}.ehr_patient_identifiers WHERE patient_key = :pk"
            ),
            {"pk": patient_key},
        )
    ).scalar()
    return [RecordIdentifier.model_validate(i) for i in found or []]


async def link(session: AsyncSession, patient_key: str) -> tuple[str, datetime] | None:
    row = (
        await session.execute(
            text(
                f"SELECT fhir_patient_id, checked_at FROM {SCHEMA}.ehr_patient_links "
                "WHERE patient_key = :pk"
            ),
            {"pk": patient_key},
        )
    ).first()
    return (row[0], row[1]) if row else None


async def save_link(
    session: AsyncSession,
    clinic_id: str,
    patient_key: str,
    fhir_patient_id: str,
    matched_on: str,
    at: datetime,
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.ehr_patient_links (patient_key, clinic_id, fhir_patient_id, "
            "matched_on, checked_at) VALUES (:pk, :c, :f, :m, :at) ON CONFLICT (patient_key) "
            "DO UPDATE SET fhir_patient_id = EXCLUDED.fhir_patient_id, "
            "matched_on = EXCLUDED.matched_on, checked_at = EXCLUDED.checked_at"
        ),
        {"pk": patient_key, "c": clinic_id, "f": fhir_patient_id, "m": matched_on, "at": at},
    )


async def forget_link(session: AsyncSession, patient_key: str) -> None:
    await session.execute(
        text(f"DELETE FROM {SCHEMA}.ehr_patient_links WHERE patient_key = :pk"),
        {"pk": patient_key},
    )


# --- booking tasks for staff and the appointments Revisit created -----------------------------


async def save_booking_task(session: AsyncSession, **task: Any) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.ehr_booking_tasks (escalation_id, clinic_id, patient_key, "
            "reason, booking_request_id, reply_message_id, service_line, details, created_at) "
            "VALUES (:escalation_id, :clinic_id, :patient_key, :reason, :booking_request_id, "
            ":reply_message_id, :service_line, CAST(:details AS jsonb), :created_at) "
            "ON CONFLICT (escalation_id) DO NOTHING"
        ),
        {**task, "details": json.dumps(task["details"])},
    )


async def booking_tasks(
    session: AsyncSession, clinic_id: str, limit: int = 100
) -> Sequence[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                "SELECT t.*, (o.escalation_id IS NOT NULL) AS open "
                f"FROM {SCHEMA}.ehr_booking_tasks t "
                f"LEFT JOIN {SCHEMA}.open_escalations o ON o.escalation_id = t.escalation_id "
                "WHERE t.clinic_id = :c ORDER BY t.created_at DESC LIMIT :n"
            ),
            {"c": clinic_id, "n": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def save_appointment(session: AsyncSession, **row: Any) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.ehr_appointments (booking_request_id, clinic_id, patient_key, "
            "appointment_id, slot_id, sequence_id, created_at) VALUES (:booking_request_id, "
            ":clinic_id, :patient_key, :appointment_id, :slot_id, :sequence_id, :created_at) "
            "ON CONFLICT (booking_request_id) DO NOTHING"
        ),
        row,
    )


async def latest_appointment(session: AsyncSession, patient_key: str) -> str | None:
    found = (
        await session.execute(
            text(
                f"SELECT appointment_id FROM {SCHEMA}.ehr_appointments WHERE patient_key = :pk "
                "ORDER BY created_at DESC LIMIT 1"
            ),
            {"pk": patient_key},
        )
    ).scalar()
    return str(found) if found else None
