"""The set-based SQL sweep against the real Postgres: it does exactly what the rules would."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from random import Random
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.segmenter import repository
from services.segmenter.domain import PatientState, decide_batch, evaluate
from services.segmenter.domain.memberships import HOLD_RECOVERY
from services.segmenter.sweep import sweep_chunk
from shared.events import parse_event
from shared.events.common import ServiceLine
from shared.events.ehr import Sentiment
from tests.segmenter.factory import PARAMS, Ehr, at, random_chart

pytestmark = pytest.mark.integration
T1 = at("2026-02-01", 12)


async def _store(
    sessions: async_sessionmaker[AsyncSession], charts: dict[str, list[Any]]
) -> dict[str, PatientState]:
    async with sessions() as session, session.begin():
        before = await repository.load_states(session, charts)
        after = {k: decide_batch(before[k], charts[k], T1, PARAMS)[0] for k in charts}
        await repository.save_states(session, before, after, {})
    return after


async def _outbox(sessions: async_sessionmaker[AsyncSession], clinic: str) -> dict[str, list[Any]]:
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                text("DELETE FROM segmenter.outbox WHERE message_key LIKE :c RETURNING id, body"),
                {"c": f"{clinic}:%"},
            )
        ).all()
    out: dict[str, list[Any]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.id):
        event = parse_event(row.body)  # every event the sweep writes is a valid envelope
        out[event.patient_key].append(event.payload)
    return out


def _view(state: PatientState) -> dict[str, tuple[Any, ...]]:
    return {
        k: (m.status, m.hold_reason, m.eligibility_id, m.emissions, m.closed_reason)
        for k, m in state.memberships.items()
    }


async def test_the_sweep_moves_memberships_through_time_exactly_as_the_rules_would(
    seg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"clinic-sw-{uuid.uuid4().hex[:8]}"
    rnd = Random(20260201)
    charts = {}
    for n in range(60):
        ehr = Ehr(f"{clinic}:pt-{n}")
        charts[ehr.patient_key] = random_chart(rnd, ehr)
    await _store(seg_sessions, charts)
    await _outbox(seg_sessions, clinic)
    compared = emitted = 0
    for step in (1, 30, 90, 200, 400):
        now = T1 + timedelta(days=step)
        async with seg_sessions() as session:
            stored = await repository.load_states(session, charts, lock=False)
        expected = {k: evaluate(s, now, PARAMS) for k, s in stored.items()}
        async with seg_sessions() as session, session.begin():
            result = await sweep_chunk(session, now, clinic_id=clinic)
        assert not result.more
        async with seg_sessions() as session:
            swept = await repository.load_states(session, charts, lock=False)
        events = await _outbox(seg_sessions, clinic)
        for key in charts:
            state, out = expected[key]
            assert _view(swept[key]) == _view(state), key
            assert swept[key].next_transition_at == state.next_transition_at, key
            assert [p.model_dump() for p in events.get(key, [])] == [p.model_dump() for p in out], (
                key
            )
            compared += 1
            emitted += len(out)
    assert compared == 5 * len(charts) and emitted > 20  # the charts did move through time


async def test_the_sweep_keeps_a_patient_in_service_recovery_held(
    seg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"clinic-sw-{uuid.uuid4().hex[:8]}"
    ehr = Ehr(f"{clinic}:pt-upset")
    await _store(
        seg_sessions,
        {
            ehr.patient_key: [
                ehr.feedback("fb-1", at("2026-01-30"), Sentiment.poor),
                ehr.visit("v-1", at("2026-01-20"), ServiceLine.neurotoxin),
            ]
        },
    )
    async with seg_sessions() as session, session.begin():
        result = await sweep_chunk(session, at("2026-05-01"), clinic_id=clinic)
    assert result.patients == 1 and result.eligible == 0
    async with seg_sessions() as session:
        (state,) = (await repository.load_states(session, [ehr.patient_key], lock=False)).values()
    (m,) = state.memberships.values()
    assert m.status.value == "held" and m.hold_reason == HOLD_RECOVERY


async def test_a_patient_locked_by_a_handler_is_skipped_not_waited_for(
    seg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"clinic-sw-{uuid.uuid4().hex[:8]}"
    ehr = Ehr(f"{clinic}:pt-busy")
    cancel = ehr.cancelled("a-1", at("2026-02-10"), ServiceLine.acne, at("2026-02-01", 11))
    await _store(seg_sessions, {ehr.patient_key: [cancel]})
    async with seg_sessions() as handler, handler.begin():
        await repository.load_states(handler, [ehr.patient_key])  # holds the patient's row
        async with seg_sessions() as sweeper, sweeper.begin():
            skipped = await sweep_chunk(sweeper, at("2026-02-02"), clinic_id=clinic)
    assert skipped.patients == 0
    async with seg_sessions() as session, session.begin():
        swept = await sweep_chunk(session, at("2026-02-02"), clinic_id=clinic)
    assert swept.patients == 1 and swept.eligible == 1


async def _has_timer(sessions: async_sessionmaker[AsyncSession], due: Any) -> bool:
    bucket = repository.sweep_bucket(due)
    async with sessions() as session:
        found = (
            await session.execute(
                text(
                    "SELECT count(*) FROM segmenter.timers WHERE kind = 'sweep' "
                    "AND timer_key = :key AND due_at = :bucket"
                ),
                {"key": f"at {bucket:%Y-%m-%dT%H%M}", "bucket": bucket},
            )
        ).scalar_one()
    return bool(found == 1)


async def test_every_stored_transition_has_a_durable_timer_that_triggers_the_sweep(
    seg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"clinic-sw-{uuid.uuid4().hex[:8]}"
    ehr = Ehr(f"{clinic}:pt-timer")
    cancel = ehr.cancelled("a-1", at("2026-02-10"), ServiceLine.acne, at("2026-02-01", 11))
    (state,) = (await _store(seg_sessions, {ehr.patient_key: [cancel]})).values()
    assert state.next_transition_at == at("2026-02-01", 13)
    assert await _has_timer(seg_sessions, state.next_transition_at)
    async with seg_sessions() as session, session.begin():
        await sweep_chunk(session, at("2026-02-02"), clinic_id=clinic)
    # the sweep, in SQL, sets the timer for the next transition: the window closing
    assert await _has_timer(seg_sessions, at("2026-02-01", 11) + timedelta(days=30))


async def test_a_cached_state_is_not_reused_once_the_sweep_has_changed_the_patient(
    seg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"clinic-sw-{uuid.uuid4().hex[:8]}"
    ehr = Ehr(f"{clinic}:pt-cached")
    cancel = ehr.cancelled("a-1", at("2026-02-10"), ServiceLine.acne, at("2026-02-01", 11))
    cache = repository.StateCache(10)
    async with seg_sessions() as session, session.begin():
        before = await repository.load_states(session, [ehr.patient_key], cache=cache)
        after = {k: decide_batch(s, [cancel], T1, PARAMS)[0] for k, s in before.items()}
        await repository.save_states(session, before, after, {}, cache=cache)
    async with seg_sessions() as session, session.begin():
        await sweep_chunk(session, at("2026-02-02"), clinic_id=clinic)  # opens the need
    async with seg_sessions() as session, session.begin():
        (state,) = (await repository.load_states(session, [ehr.patient_key], cache=cache)).values()
    assert cache.misses == 2 and cache.hits == 0  # first load, then a stale entry
    assert [m.status.value for m in state.memberships.values()] == ["open"]
    # A write that rolls back must not leave its state in the cache either.
    rebooked = ehr.booked("a-2", at("2026-02-20"), ServiceLine.acne, at("2026-02-02", 12))
    async with seg_sessions() as session:
        transaction = await session.begin()
        before = await repository.load_states(session, [ehr.patient_key], cache=cache)
        moved = {k: decide_batch(s, [rebooked], T1, PARAMS)[0] for k, s in before.items()}
        await repository.save_states(session, before, moved, {}, cache=cache)
        await transaction.rollback()
    async with seg_sessions() as session, session.begin():
        (state,) = (await repository.load_states(session, [ehr.patient_key], cache=cache)).values()
    assert [m.status.value for m in state.memberships.values()] == ["open"]
    assert cache.hits == 0
