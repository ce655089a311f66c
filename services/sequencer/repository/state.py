"""Sequences, patients' outreach facts, steps, activity and step timers, loaded and saved in bulk.

A consumed batch or a batch of timers loads every patient it touches in a few statements (rows
locked ``FOR UPDATE`` so two replicas never decide for one patient at once) and writes every
change back in one pipelined ``executemany`` per table, through the session's own asyncpg
connection, inside the session's transaction. Building 500 rows of bind parameters through
SQLAlchemy's ``executemany`` cost more than the decisions themselves (bench/sequencer.py).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from collections.abc import Sequence as Seq
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain.model import (
    Activity,
    Patient,
    Sequence,
    StepRecord,
    TimerOp,
    clinic_of,
)
from services.sequencer.repository.rows import (
    SEQ_COLS,
    STATE_COLS,
    row_to_patient,
    row_to_sequence,
    value,
)

SCHEMA = "sequencer"
SEQ_SELECT = f"SELECT {', '.join(SEQ_COLS)} FROM {SCHEMA}.sequences"


_SEQ_INSERT = (
    f"INSERT INTO {SCHEMA}.sequences ({', '.join(SEQ_COLS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(SEQ_COLS) + 1))})"
)
_SEQ_UPDATE = (
    f"UPDATE {SCHEMA}.sequences SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(STATE_COLS, start=2))
    + ", updated_at = now() WHERE sequence_id = $1"
)
_PATIENT_UPSERT = (
    f"INSERT INTO {SCHEMA}.patients (patient_key, clinic_id, time_zone, opt_outs, escalations, "
    "operator_paused, sends, rest_until, home_state, closed_reminders, updated_at) VALUES "
    "($1, $2, $3, $4::text[], $5::jsonb, $6, $7::jsonb, $8, $9, $10::text[], now()) "
    "ON CONFLICT (patient_key) DO UPDATE SET "
    "time_zone = EXCLUDED.time_zone, home_state = EXCLUDED.home_state, "
    "closed_reminders = EXCLUDED.closed_reminders, "
    "opt_outs = EXCLUDED.opt_outs, "
    "escalations = EXCLUDED.escalations, operator_paused = EXCLUDED.operator_paused, "
    "sends = EXCLUDED.sends, rest_until = EXCLUDED.rest_until, updated_at = now()"
)
_STEP_UPSERT = (
    f"INSERT INTO {SCHEMA}.steps AS steps (sequence_id, step, clinic_id, channel, template_key, "
    "scheduled_for, status, note, commanded_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
    "$8, $9, $10) ON CONFLICT (sequence_id, step) DO UPDATE SET "
    "channel = coalesce(EXCLUDED.channel, steps.channel), "
    "template_key = coalesce(EXCLUDED.template_key, steps.template_key), "
    "scheduled_for = coalesce(EXCLUDED.scheduled_for, steps.scheduled_for), "
    "status = EXCLUDED.status, note = EXCLUDED.note, "
    "commanded_at = coalesce(EXCLUDED.commanded_at, steps.commanded_at), "
    "updated_at = EXCLUDED.updated_at"
)
_ACTIVITY_INSERT = (
    f"INSERT INTO {SCHEMA}.activity (sequence_id, clinic_id, kind, at) VALUES ($1, $2, $3, $4)"
)
# The same table and upsert semantics as shared.timers.Timers.schedule, for a whole batch.
_TIMER_UPSERT = (
    f"INSERT INTO {SCHEMA}.timers (kind, timer_key, due_at, patient_key, payload) "
    "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (kind, timer_key) DO UPDATE SET "
    "due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, patient_key = EXCLUDED.patient_key"
)
_TIMER_DELETE = f"DELETE FROM {SCHEMA}.timers WHERE kind = $1 AND timer_key = $2"


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside the session's transaction."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    # SQLAlchemy's asyncpg adapter opens its transaction at the first statement.
    if getattr(raw.dbapi_connection, "_transaction", True) is None:
        await session.execute(text("SELECT 1"))
    found = raw.driver_connection
    assert isinstance(found, asyncpg.Connection)
    return found


async def load_patients(
    session: AsyncSession, keys: Iterable[str], *, lock: bool = True
) -> dict[str, Patient]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    conn = await driver(session)
    rows = await conn.fetch(
        f"SELECT patient_key, time_zone, home_state, closed_reminders, opt_outs, "
        "escalations::text AS escalations, "
        f"operator_paused, sends::text AS sends, rest_until FROM {SCHEMA}.patients "
        "WHERE patient_key = ANY($1::text[]) ORDER BY patient_key"
        + (" FOR UPDATE" if lock else ""),
        wanted,
    )
    found = {r["patient_key"]: row_to_patient(r) for r in rows}
    return {k: found.get(k) or Patient(patient_key=k) for k in wanted}


async def load_active(
    session: AsyncSession, keys: Iterable[str], *, lock: bool = True
) -> dict[str, Sequence]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    conn = await driver(session)
    rows = await conn.fetch(
        f"{SEQ_SELECT} WHERE patient_key = ANY($1::text[]) AND state = 'active' "
        "ORDER BY sequence_id" + (" FOR UPDATE" if lock else ""),
        wanted,
    )
    return {r["patient_key"]: row_to_sequence(r) for r in rows}


async def load_sequences(
    session: AsyncSession, ids: Iterable[str], *, lock: bool = True
) -> dict[str, Sequence]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    conn = await driver(session)
    rows = await conn.fetch(
        f"{SEQ_SELECT} WHERE sequence_id = ANY($1::text[]) ORDER BY sequence_id"
        + (" FOR UPDATE" if lock else ""),
        wanted,
    )
    return {r["sequence_id"]: row_to_sequence(r) for r in rows}


async def patient_keys_of(session: AsyncSession, ids: Iterable[str]) -> list[str]:
    conn = await driver(session)
    rows = await conn.fetch(
        f"SELECT patient_key FROM {SCHEMA}.sequences WHERE sequence_id = ANY($1::text[])",
        list(ids),
    )
    return [r["patient_key"] for r in rows]


async def save_sequences(
    session: AsyncSession, seqs: Iterable[Sequence], existing: Collection[str]
) -> None:
    """Update the state of sequences that were loaded, then insert the new ones.

    Updates first: the partial unique index allows one active sequence per patient, so a
    superseded sequence must leave "active" before its successor is written.
    """
    every = list(seqs)
    updates = [
        (s.sequence_id, *(value(getattr(s, c)) for c in STATE_COLS))
        for s in every
        if s.sequence_id in existing
    ]
    inserts = [
        tuple(s.clinic_id if c == "clinic_id" else value(getattr(s, c)) for c in SEQ_COLS)
        for s in every
        if s.sequence_id not in existing
    ]
    conn = await driver(session)
    if updates:
        await conn.executemany(_SEQ_UPDATE, updates)
    if inserts:
        await conn.executemany(_SEQ_INSERT, inserts)


async def save_patients(session: AsyncSession, patients: Iterable[Patient]) -> None:
    rows = [
        (
            p.patient_key,
            clinic_of(p.patient_key),
            p.time_zone,
            sorted(p.opt_outs),
            json.dumps(dict(p.escalations)) if p.escalations else "{}",
            p.operator_paused,
            json.dumps([[s.sequence_id, s.step, s.at.isoformat()] for s in p.sends]),
            p.rest_until,
            p.home_state,
            sorted(p.closed_reminders),
        )
        for p in patients
    ]
    if rows:
        conn = await driver(session)
        await conn.executemany(_PATIENT_UPSERT, rows)


def _merge_steps(records: Iterable[StepRecord]) -> list[StepRecord]:
    merged: dict[tuple[str, int], StepRecord] = {}
    for r in records:
        old = merged.get((r.sequence_id, r.step))
        if old is not None:
            r = StepRecord(
                r.sequence_id,
                r.step,
                r.status,
                r.at,
                r.note,
                channel=r.channel or old.channel,
                template_key=r.template_key or old.template_key,
                scheduled_for=r.scheduled_for or old.scheduled_for,
                commanded_at=r.commanded_at or old.commanded_at,
            )
        merged[(r.sequence_id, r.step)] = r
    return list(merged.values())


async def save_steps(
    session: AsyncSession, records: Iterable[StepRecord], clinic_of_sequence: Mapping[str, str]
) -> None:
    rows = [
        (
            r.sequence_id,
            r.step,
            clinic_of_sequence[r.sequence_id],
            r.channel.value if r.channel else None,
            r.template_key,
            r.scheduled_for,
            r.status.value,
            r.note,
            r.commanded_at,
            r.at,
        )
        for r in _merge_steps(records)
    ]
    if rows:
        conn = await driver(session)
        await conn.executemany(_STEP_UPSERT, rows)


async def add_activity(session: AsyncSession, items: Iterable[tuple[Activity, str]]) -> None:
    rows = [(a.sequence_id, clinic, a.kind, a.at) for a, clinic in items]
    if rows:
        conn = await driver(session)
        await conn.executemany(_ACTIVITY_INSERT, rows)


async def apply_timers(
    session: AsyncSession,
    ops: Seq[TimerOp],
    payload_of: Mapping[str, tuple[str, Mapping[str, Any]]],
) -> None:
    """Write the last operation on each timer; ``payload_of`` maps sequence id to
    (patient_key, payload)."""
    last: dict[tuple[str, str], TimerOp] = {}
    for op in ops:
        last[(op.kind, op.key)] = op
    upserts: list[tuple[Any, ...]] = []
    deletes: list[tuple[Any, ...]] = []
    encoded: dict[str, str] = {}
    for op in last.values():
        if op.due is None:
            deletes.append((op.kind, op.key))
            continue
        patient_key, payload = payload_of[op.sequence_id]
        if op.sequence_id not in encoded:
            encoded[op.sequence_id] = json.dumps(dict(payload))
        upserts.append((op.kind, op.key, op.due, patient_key, encoded[op.sequence_id]))
    if not (upserts or deletes):
        return
    conn = await driver(session)
    if deletes:
        await conn.executemany(_TIMER_DELETE, deletes)
    if upserts:
        await conn.executemany(_TIMER_UPSERT, upserts)
