"""Loading and saving patients' states (journey records, memberships, the patient row), and
the durable timers that trigger the sweep.

Every statement works on a whole consumer batch at once (``= ANY(:keys)``, one JSON document
of rows per table, see rows.py), so a batch of 500 events costs a handful of round trips.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter.domain import Journey, Membership, MembershipStatus, PatientState
from services.segmenter.domain.records import Record, RecordKind, Stamp
from services.segmenter.params_store import load_params, overrides_of, store_overrides
from services.segmenter.rows import (
    MEMBERSHIP_COLUMNS,
    SCHEMA,
    UPDATE_PATIENT,
    UPSERT_MEMBERSHIP,
    UPSERT_RECORD,
    clinic_of,
    execute_rows,
    iso_or_none,
    membership_row,
    record_row,
)
from shared.events.common import Segment, SegmentKind, ServiceLine, SourceRecord, SourceRecordKind
from shared.events.eligibility import LeftReason
from shared.events.envelope import payload_class

SWEEP_TIMER = "sweep"
SWEEP_BUCKET = timedelta(minutes=1)


class StateCache:
    """The patient states this process loaded or wrote last, least recently used evicted.

    A consumer sees the same patients again and again (one patient, one partition), and
    rebuilding a journey from its rows is most of the cost of a batch. An entry is used only
    while the patient row's ``rev`` still matches it: every write of a patient's state (by any
    process, the sweep included) sets a new random ``rev``, and a write that rolls back leaves
    the old one, so a stale or uncommitted entry is never reused.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = self.misses = 0
        self._entries: OrderedDict[str, tuple[uuid.UUID, PatientState]] = OrderedDict()

    def get(self, key: str, rev: uuid.UUID | None) -> PatientState | None:
        entry = self._entries.get(key)
        if entry is None or rev is None or entry[0] != rev:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: str, rev: uuid.UUID, state: PatientState) -> None:
        self._entries[key] = (rev, state)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


# --- loading ----------------------------------------------------------------------------------


async def load_states(
    session: AsyncSession,
    patient_keys: Iterable[str],
    *,
    lock: bool = True,
    cache: StateCache | None = None,
) -> dict[str, PatientState]:
    """These patients' states; with ``lock`` their rows are created if new and locked for this
    transaction (one writer per patient at a time). ``cache`` spares reloading the patients
    whose state this process holds at the current revision."""
    keys = sorted(set(patient_keys))
    if not keys:
        return {}
    if lock:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.patients (patient_key, clinic_id) "
                "SELECT k, c FROM unnest(CAST(:keys AS text[]), CAST(:clinics AS text[])) "
                "AS t(k, c) "
                "ON CONFLICT (patient_key) DO NOTHING"
            ),
            {"keys": keys, "clinics": [clinic_of(k) for k in keys]},
        )
    patients = (
        await session.execute(
            text(
                f"SELECT patient_key, recovery_hold, raised, rev FROM {SCHEMA}.patients "
                "WHERE patient_key = ANY(:keys) ORDER BY patient_key"
                + (" FOR UPDATE" if lock else "")
            ),
            {"keys": keys},
        )
    ).all()
    cached = {}
    if cache is not None:
        for p in patients:
            hit = cache.get(p.patient_key, p.rev)
            if hit is not None:
                cached[p.patient_key] = hit
    keys = [k for k in keys if k not in cached]
    records: dict[str, dict[tuple[RecordKind, str], Record]] = {k: {} for k in keys}
    for r in await _record_rows(session, keys):
        kind = RecordKind(r.kind)
        stamp = Stamp(r.source_updated_at, r.source_version, r.type_rank, r.digest)
        payload = payload_class(r.event_type).model_validate(r.payload)
        records[r.patient_key][(kind, r.record_id)] = Record(
            kind, r.record_id, r.event_type, stamp, r.first_at, payload
        )
    memberships: dict[str, dict[str, Membership]] = {k: {} for k in keys}
    if keys:
        for m in await load_memberships(session, keys):
            memberships[m[0]][m[1].need_id] = m[1]
    return {
        p.patient_key: cached.get(p.patient_key)
        or PatientState(
            patient_key=p.patient_key,
            journey=Journey(p.patient_key, records[p.patient_key]),
            memberships=memberships[p.patient_key],
            raised=frozenset(p.raised or ()),
            recovery_hold=p.recovery_hold,
        )
        for p in patients
    }


async def _record_rows(session: AsyncSession, keys: list[str]) -> list[Any]:
    if not keys:
        return []
    result = await session.execute(
        text(
            "SELECT patient_key, kind, record_id, event_type, source_updated_at, "
            "source_version, type_rank, digest, first_at, payload "
            f"FROM {SCHEMA}.records WHERE patient_key = ANY(:keys)"
        ),
        {"keys": keys},
    )
    return list(result.all())


async def load_memberships(session: AsyncSession, keys: list[str]) -> list[tuple[str, Membership]]:
    rows = (
        await session.execute(
            text(
                f"SELECT {MEMBERSHIP_COLUMNS} FROM {SCHEMA}.memberships WHERE patient_key = ANY(:k)"
            ),
            {"k": keys},
        )
    ).all()
    return [(r.patient_key, _membership(r)) for r in rows]


def _membership(r: Any) -> Membership:
    return Membership(
        need_id=r.need_id,
        segment=Segment(r.segment),
        kind=SegmentKind(r.kind),
        service_line=ServiceLine(r.service_line),
        source=SourceRecord(kind=SourceRecordKind(r.source_kind), id=r.source_id),
        status=MembershipStatus(r.status),
        surface_at=r.surface_at,
        expires_at=r.expires_at,
        rank=r.rank,
        cosmetic=r.cosmetic,
        fields=r.fields,
        emissions=r.emissions,
        eligibility_id=r.eligibility_id,
        hold_reason=r.hold_reason,
        closed_reason=LeftReason(r.closed_reason) if r.closed_reason else None,
        closed_at=r.closed_at,
        opened_at=r.opened_at,
        origin=r.origin,
    )


# --- saving -----------------------------------------------------------------------------------


async def save_states(
    session: AsyncSession,
    before: Mapping[str, PatientState],
    after: Mapping[str, PatientState],
    params_versions: Mapping[str, int],
    *,
    cache: StateCache | None = None,
) -> None:
    """Write what changed between ``before`` and ``after`` (records, memberships, patients).

    Each table gets one statement whose rows travel as one JSON document: a batch of 500
    patients costs three round trips and no per-value parameter processing.
    """
    records: list[str] = []
    memberships: list[dict[str, Any]] = []
    patients: list[dict[str, Any]] = []
    for key, new in after.items():
        old = before.get(key) or PatientState.new(key)
        # Unchanged records and memberships are the very same objects: identity answers first.
        old_records, old_memberships = old.journey.records, old.memberships
        for rk, record in new.journey.records.items():
            was = old_records.get(rk)
            if was is not record and was != record:
                records.append(record_row(key, record))
        for need_id, m in new.memberships.items():
            was_m = old_memberships.get(need_id)
            if was_m is not m and was_m != m:
                memberships.append(membership_row(key, m))
        rev = uuid.uuid4()
        if cache is not None:
            cache.put(key, rev, new)
        patients.append(
            {
                "patient_key": key,
                "recovery_hold": new.recovery_hold,
                "raised": sorted(new.raised),
                "next_transition_at": iso_or_none(new.next_transition_at),
                "params_version": params_versions.get(clinic_of(key), 0),
                "rev": str(rev),
            }
        )
    await execute_rows(session, UPSERT_RECORD, records)
    await execute_rows(session, UPSERT_MEMBERSHIP, memberships)
    await execute_rows(session, UPDATE_PATIENT, patients)
    await schedule_sweeps(session, (s.next_transition_at for s in after.values()))


def sweep_bucket(at: datetime) -> datetime:
    """``at`` rounded up to the sweep's granularity, so nearby transitions share one timer."""
    step = SWEEP_BUCKET.total_seconds()
    epoch = at.timestamp()
    rounded = -(-epoch // step) * step
    return datetime.fromtimestamp(rounded, tz=UTC)


async def schedule_sweeps(session: AsyncSession, times: Iterable[datetime | None]) -> None:
    """A durable timer at each (bucketed) moment when time alone changes a membership."""
    buckets = sorted({sweep_bucket(t) for t in times if t is not None})
    if buckets:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.timers (kind, timer_key, due_at) "
                "SELECT :kind, k, b FROM unnest(CAST(:keys AS text[]), "
                "CAST(:buckets AS timestamptz[])) AS t(k, b) "
                "ON CONFLICT (kind, timer_key) DO NOTHING"
            ),
            {
                "kind": SWEEP_TIMER,
                "keys": [f"at {b:%Y-%m-%dT%H%M}" for b in buckets],
                "buckets": buckets,
            },
        )


__all__ = [
    "SCHEMA",
    "SWEEP_TIMER",
    "StateCache",
    "clinic_of",
    "load_params",
    "load_states",
    "overrides_of",
    "save_states",
    "schedule_sweeps",
    "store_overrides",
    "sweep_bucket",
]
