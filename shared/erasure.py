"""Erasing one patient on request, across every service's schema, in one transaction.

Like ``revisit migrate``, this is an operator's tool that spans schemas (each service still
reads only its own tables); ``revisit patient erase`` and every service's
``POST /admin/patients/erase`` run the same plan below.

What happens to the patient's rows:

- removed: contacts, consent and conversation rows, messages and their bodies, journeys,
  records, memberships, sequences and their steps, escalation cases with their notes and pages,
  EHR caches, pending timers and unsent events, and the raw EHR messages that name the patient
  (their bytes dropped; the de-duplication row kept under a hashed key);
- re-keyed: the metrics read model keeps its rows (so counts, funnels and pilot figures stay
  what they were) under a random key that nothing else carries;
- kept: the audit log, which records the erasure itself (who, when, from where), and an
  opt-out the patient had made, under a hash of their key (messenger.erased_opt_outs), so the
  EHR sending their record again never makes them reachable.

Events already on Kafka topics are not touched: they age out with the topics' retention.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.audit_log import append_now

SERVICE_SCHEMAS = ("ingest", "segmenter", "sequencer", "messenger", "escalation", "metrics")
_PK = "patient_key = :pk"

# (schema, statement) in order: rows found through a parent (a sequence's steps, a case's
# notes) go before the parent that finds them.
PLAN: tuple[tuple[str, str], ...] = (
    # ingest: raw EHR messages naming the patient lose their bytes and their readable key.
    (
        "ingest",
        "UPDATE ingest.source_messages SET raw = NULL, purged_at = now(), "
        "route = CASE WHEN route LIKE 'fhir-put:%' THEN split_part(route, '/', 1) || '/erased' "
        "ELSE route END, "
        "source_key = 'erased:' || encode(sha256(convert_to(source_key, 'UTF8')), 'hex') "
        "WHERE clinic_id = :clinic AND source_key NOT LIKE 'erased:%' AND ("
        "position('/' || :pid || '/' IN source_key) > 0 "
        "OR position('/' || :pid || '@' IN source_key) > 0 "
        "OR EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) n "
        "WHERE position(convert_to(n, 'UTF8') IN coalesce(raw, ''::bytea)) > 0))",
    ),
    (
        "ingest",
        "DELETE FROM ingest.refused_messages WHERE clinic_id = :clinic AND EXISTS "
        "(SELECT 1 FROM unnest(CAST(:needles AS text[])) n "
        "WHERE position(convert_to(n, 'UTF8') IN raw) > 0)",
    ),
    # segmenter
    ("segmenter", f"DELETE FROM segmenter.records WHERE {_PK}"),
    ("segmenter", f"DELETE FROM segmenter.memberships WHERE {_PK}"),
    ("segmenter", f"DELETE FROM segmenter.patients WHERE {_PK}"),
    # sequencer
    (
        "sequencer",
        "DELETE FROM sequencer.steps WHERE sequence_id IN "
        f"(SELECT sequence_id FROM sequencer.sequences WHERE {_PK})",
    ),
    (
        "sequencer",
        "DELETE FROM sequencer.activity WHERE sequence_id IN "
        f"(SELECT sequence_id FROM sequencer.sequences WHERE {_PK})",
    ),
    ("sequencer", f"DELETE FROM sequencer.sequences WHERE {_PK}"),
    ("sequencer", f"DELETE FROM sequencer.pilot_assignments WHERE {_PK}"),
    ("sequencer", f"DELETE FROM sequencer.pilot_screenings WHERE {_PK}"),
    ("sequencer", f"DELETE FROM sequencer.staff_actions WHERE {_PK}"),
    ("sequencer", f"DELETE FROM sequencer.patients WHERE {_PK}"),
    # messenger
    (
        "messenger",
        "DELETE FROM messenger.sends WHERE sequence_id IN "
        f"(SELECT sequence_id FROM messenger.outgoing WHERE {_PK} AND sequence_id IS NOT NULL)",
    ),
    # An opt-out outlives the erasure (under a hash of the key), so the EHR sending the record
    # again never makes a patient who said STOP reachable.
    (
        "messenger",
        "INSERT INTO messenger.erased_opt_outs (key_hash, clinic_id, opted_out_sms, "
        "opted_out_email) SELECT encode(sha256(convert_to(patient_key, 'UTF8')), 'hex'), "
        "clinic_id, opted_out_sms, opted_out_email FROM messenger.contacts "
        f"WHERE {_PK} AND (opted_out_sms OR opted_out_email) ON CONFLICT (key_hash) DO UPDATE "
        "SET opted_out_sms = messenger.erased_opt_outs.opted_out_sms OR EXCLUDED.opted_out_sms, "
        "opted_out_email = messenger.erased_opt_outs.opted_out_email "
        "OR EXCLUDED.opted_out_email",
    ),
    *(
        ("messenger", f"DELETE FROM messenger.{table} WHERE {_PK}")
        for table in (
            "outgoing",
            "inbound",
            "staff_replies",
            "sandbox_messages",
            "sandbox_bookings",
            "booking_links",
            "consent_ledger",
            "contacts",
            "conversations",
            "inbox_conversations",
            "held_steps",
            "open_escalations",
            "ehr_appointments",
            "ehr_booking_tasks",
            "ehr_chart_queue",
            "ehr_patient_identifiers",
            "ehr_patient_links",
            "waitlist",
            "recall_members",
            "slot_offers",
        )
    ),
    # a freed slot stays counted; who cancelled it does not stay named
    (
        "messenger",
        "UPDATE messenger.freed_slots SET freed_by = :erased WHERE freed_by = :pk",
    ),
    # escalation: a case and everything hung on it.
    *(
        (
            "escalation",
            f"DELETE FROM escalation.{table} WHERE escalation_id IN "
            f"(SELECT escalation_id FROM escalation.cases WHERE {_PK})",
        )
        for table in ("case_notes", "pages", "sandbox_pages", "audit")
    ),
    ("escalation", f"DELETE FROM escalation.cases WHERE {_PK}"),
    # metrics: the same rows under a key that names nobody, so every count stays.
    *(
        ("metrics", f"UPDATE metrics.{table} SET patient_key = :erased WHERE {_PK}")
        for table in ("episodes", "escalations", "opt_outs", "replies")
    ),
    (
        "metrics",
        "UPDATE metrics.histories SET patient_key = :erased, "
        "doc = jsonb_set(doc, '{patient_key}', to_jsonb(CAST(:erased AS text))) WHERE " + _PK,
    ),
    # every service: pending timers and events not yet relayed.
    *(
        (
            schema,
            f"DELETE FROM {schema}.timers WHERE {_PK} OR timer_key LIKE :pk_prefix",
        )
        for schema in SERVICE_SCHEMAS
    ),
    *(
        (schema, f"DELETE FROM {schema}.outbox WHERE message_key = :pk")
        for schema in SERVICE_SCHEMAS
    ),
)


@dataclass(frozen=True)
class Erasure:
    clinic_id: str
    patient_id: str
    erased_key: str  # what the metrics rows are now keyed by
    rows: dict[str, int]  # "schema.table" -> rows removed or re-keyed

    @property
    def patient_key(self) -> str:
        return f"{self.clinic_id}:{self.patient_id}"


def _needles(patient_id: str) -> list[str]:
    """How the patient's id appears inside raw EHR messages (JSON, FHIR and HL7 v2)."""
    return [
        f'"{patient_id}"',
        f"Patient/{patient_id}",
        f"|{patient_id}^",
        f"|{patient_id}|",
        f"~{patient_id}^",
    ]


def _table(statement: str) -> str:
    words = statement.split()
    return words[2] if words[0] in ("DELETE", "INSERT") else words[1]


async def erase_patient(
    engine: AsyncEngine,
    clinic_id: str,
    patient_id: str,
    *,
    who: dict[str, Any],
) -> Erasure:
    """Erase one patient in one transaction, recording it in the audit log in the same one.

    ``who`` is the audit row's actor: service, subject, role, principal_kind, client, route.
    """
    if not clinic_id or not patient_id or ":" in clinic_id:
        raise ValueError("a clinic id and a patient id are needed")
    patient_key = f"{clinic_id}:{patient_id}"
    erased = f"{clinic_id}:erased-{uuid.uuid4().hex}"
    params = {
        "pk": patient_key,
        "pk_prefix": patient_key.replace("%", r"\%").replace("_", r"\_") + "%",
        "clinic": clinic_id,
        "pid": patient_id,
        "needles": _needles(patient_id),
        "erased": erased,
    }
    rows: dict[str, int] = {}
    async with engine.begin() as conn:
        for _schema, statement in PLAN:
            result = await conn.execute(text(statement), params)
            table = _table(statement)
            rows[table] = rows.get(table, 0) + max(result.rowcount, 0)
        await _record(conn, patient_key, who, sum(rows.values()))
    return Erasure(clinic_id, patient_id, erased, rows)


async def _record(conn: AsyncConnection, patient_key: str, who: dict[str, Any], n: int) -> None:
    await append_now(
        conn,
        [
            {
                "at": datetime.now(UTC).isoformat(),
                "service": who.get("service", "cli"),
                "subject": who.get("subject", "unknown"),
                "role": who.get("role"),
                "principal_kind": who.get("principal_kind"),
                "clinic_id": patient_key.split(":", 1)[0],
                "action": "erase",
                "method": who.get("method", "ERASE"),
                "route": who.get("route", "revisit patient erase"),
                "patient_key": patient_key,
                # How much went, never what.
                "object_id": f"rows={n}",
                "client": who.get("client"),
                "status": 200,
            }
        ],
    )
