"""One transaction's worth of sequencer work: load the patients it touches, apply the pure core's
outcomes one event at a time, write everything back in bulk.

Locks are always taken patients first, then sequences, each in key order, whether the work comes
from the consumer, the timers or the ops API, so two of them never deadlock on one patient.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain import lifecycle
from services.sequencer.domain.model import (
    Activity,
    Outcome,
    Patient,
    Sequence,
    StepRecord,
    TimerOp,
    clinic_of,
)
from services.sequencer.domain.pilots import Pilot, Verdict, consider, exclusive_hold
from services.sequencer.domain.rules import Rules
from services.sequencer.domain.steps import Context
from services.sequencer.domain.workflows import Catalogue
from services.sequencer.policy import rules_for
from services.sequencer.repository import config, pilots, screenings, state
from shared.events import new_event
from shared.events.eligibility import PatientBecameEligible
from shared.events.envelope import Envelope
from shared.events.outreach import Arm, SendStep, SequenceStarted, SequenceStopped
from shared.events.pilot import PilotPlan
from shared.pilots import NeedFacts
from shared.runtime import Runtime

STEPS_COMMANDED = Counter(
    "revisit_sequencer_steps_commanded_total", "SendStep commands emitted", ["clinic_id"]
)
SEQUENCES_STOPPED = Counter(
    "revisit_sequencer_sequences_stopped_total",
    "Sequences stopped, by reason",
    ["clinic_id", "reason"],
)


class Policies:
    """Each clinic's rules and workflows, kept for a few seconds between batches.

    Loading them is three queries; a busy service would run them for every batch. A change made
    through this process's API clears the cache at once; other replicas see it within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Rules, Catalogue]] = {}

    def get(self, clinic_id: str) -> tuple[Rules, Catalogue] | None:
        entry = self._entries.get(clinic_id)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1], entry[2]

    def put(self, clinic_id: str, rules: Rules, catalogue: Catalogue) -> None:
        self._entries[clinic_id] = (time.monotonic(), rules, catalogue)

    def clear(self) -> None:
        self._entries.clear()


POLICIES_EXTRA = "sequencer_policies"


def policies_of(runtime: Runtime) -> Policies:
    found = runtime.extras.get(POLICIES_EXTRA)
    if not isinstance(found, Policies):
        found = runtime.extras[POLICIES_EXTRA] = Policies()
    return found


class Batch:
    def __init__(self, runtime: Runtime, session: AsyncSession, base: Rules) -> None:
        self.runtime = runtime
        self.policies = policies_of(runtime)
        self.session = session
        self.base = base
        self.patients: dict[str, Patient] = {}
        self.active: dict[str, Sequence] = {}
        self.by_id: dict[str, Sequence] = {}
        self.contexts: dict[str, tuple[Rules, Catalogue]] = {}
        self.running: dict[str, list[Pilot]] = {}
        self.assigned: dict[tuple[str, str], Arm] = {}
        self._stored: set[str] = set()  # sequences that have a row already
        self._patients_changed: set[str] = set()
        self._seqs_changed: dict[str, Sequence] = {}
        self._timers: list[TimerOp] = []
        self._timer_payloads: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._steps: list[StepRecord] = []
        self._activity: list[tuple[Activity, str]] = []
        self._staged: list[tuple[Envelope[Any], Mapping[str, str]]] = []
        self._assignments: list[tuple[str, str, Arm, str, datetime]] = []
        self._pilots_changed: dict[str, Pilot] = {}
        self._enrolled_before: dict[str, int] = {}
        self._counts: list[tuple[str, str | None]] = []
        self._screenings: list[screenings.ScreeningRow] = []

    # --- loading -------------------------------------------------------------------------

    async def load(self, patient_keys: Iterable[str], sequence_ids: Iterable[str] = ()) -> None:
        keys = sorted(set(patient_keys))
        ids = sorted(set(sequence_ids))
        if ids:
            keys = sorted(set(keys) | set(await state.patient_keys_of(self.session, ids)))
        self.patients.update(await state.load_patients(self.session, keys))
        active = await state.load_active(self.session, keys)
        self.active.update(active)
        self.by_id.update({s.sequence_id: s for s in active.values()})
        missing = [i for i in ids if i not in self.by_id]
        self.by_id.update(await state.load_sequences(self.session, missing))
        self._stored.update(self.by_id)
        await self.load_clinics({clinic_of(k) for k in keys})

    async def load_clinics(self, clinics: set[str]) -> None:
        for clinic in clinics - set(self.contexts):
            cached = self.policies.get(clinic)
            if cached is not None:
                self.contexts[clinic] = cached
        wanted = clinics - set(self.contexts)
        if not wanted:
            return
        rules = await config.clinic_rules(self.session, wanted)
        hours = await config.state_hours(self.session)  # patients' states narrow hours too
        overrides = await config.workflow_overrides(self.session, wanted)
        default = Catalogue.default()
        for clinic in wanted:
            self.contexts[clinic] = (
                rules_for(self.base, rules.get(clinic), hours),
                default.with_overrides(overrides.get(clinic, [])),
            )
            self.policies.put(clinic, *self.contexts[clinic])

    async def load_pilots(self, clinics: Iterable[str], patient_keys: Iterable[str]) -> None:
        found = await pilots.running_for(self.session, clinics)
        for p in found:
            self.running.setdefault(p.clinic_id, []).append(p)
        if found:
            self.assigned.update(
                await pilots.assignments_of(self.session, [p.pilot_id for p in found], patient_keys)
            )

    # --- state ---------------------------------------------------------------------------

    def context(self, clinic_id: str, now: datetime) -> Context:
        rules, catalogue = self.contexts[clinic_id]
        return Context(now=now, rules=rules, catalogue=catalogue)

    def patient(self, patient_key: str) -> Patient:
        found = self.patients.get(patient_key)
        if found is None:
            found = self.patients[patient_key] = Patient(patient_key=patient_key)
        return found

    def active_of(self, patient_key: str) -> Sequence | None:
        return self.active.get(patient_key)

    def sequence(self, sequence_id: str | None, patient_key: str) -> Sequence | None:
        """The named sequence if it is this patient's, else None."""
        if sequence_id is None:
            return None
        seq = self.by_id.get(sequence_id)
        return seq if seq is not None and seq.patient_key == patient_key else None

    def enrol(
        self, patient_key: str, event: PatientBecameEligible, now: datetime
    ) -> lifecycle.PilotArm | Verdict | None:
        """The running pilot this eligibility joins and the patient's arm in it;
        ``Verdict.held`` when a pilot holds it (no sequence: the usual process); None when no
        pilot owns it (ordinary outreach)."""
        need = NeedFacts.of(event)
        clinic = clinic_of(patient_key)
        for pilot in self.running.get(clinic, []):
            known = self.assigned.get((pilot.pilot_id, patient_key))
            seen = consider(pilot, need, patient_key, now, known)
            if seen is None:
                continue
            row = (seen, patient_key, event.eligibility_id, need.as_dict(), event.reason, now)
            self._screenings.append(row)
            if seen.verdict is Verdict.out:
                continue
            if seen.verdict is Verdict.held:
                return Verdict.held
            assert seen.arm is not None and pilot.ends_at is not None
            if seen.counts:
                self.assigned[(pilot.pilot_id, patient_key)] = seen.arm
                self._replace_pilot(replace(pilot, enrolled=pilot.enrolled + 1))
                self._assignments.append((pilot.pilot_id, patient_key, seen.arm, "", now))
            return lifecycle.PilotArm(pilot.pilot_id, seen.arm, pilot.ends_at)
        exclusive = exclusive_hold(self.running.get(clinic, []), now)
        if exclusive is None:
            return None
        row = (exclusive, patient_key, event.eligibility_id, need.as_dict(), event.reason, now)
        self._screenings.append(row)
        return Verdict.held

    def _plan_of(self, pilot_id: str) -> PilotPlan | None:
        for listed in self.running.values():
            for pilot in listed:
                if pilot.pilot_id == pilot_id:
                    return pilot.plan()
        return None

    def _replace_pilot(self, pilot: Pilot) -> None:
        self._enrolled_before.setdefault(pilot.pilot_id, pilot.enrolled - 1)
        listed = self.running[pilot.clinic_id]
        self.running[pilot.clinic_id] = [
            pilot if p.pilot_id == pilot.pilot_id else p for p in listed
        ]
        self._pilots_changed[pilot.pilot_id] = pilot

    # --- applying ------------------------------------------------------------------------

    def apply(
        self,
        out: Outcome,
        *,
        clinic_id: str,
        patient_key: str,
        now: datetime,
        cause: Envelope[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        correlation = correlation_id or (str(cause.correlation_id) if cause else None)
        if correlation is None and cause is None:
            # Work with no cause (a timer, staff): continue the sequence's own story.
            named = [s.correlation_id for s in out.sequences.values() if s.correlation_id]
            correlation = named[0] if named else None
        if out.patient_changed:
            self.patients[patient_key] = out.patient
            self._patients_changed.add(patient_key)
        for seq in out.sequences.values():
            if seq.correlation_id is None and correlation is not None:
                seq = replace(seq, correlation_id=correlation)
            self.by_id[seq.sequence_id] = seq
            self._seqs_changed[seq.sequence_id] = seq
            if seq.is_active:
                self.active[seq.patient_key] = seq
            elif (cur := self.active.get(seq.patient_key)) and cur.sequence_id == seq.sequence_id:
                del self.active[seq.patient_key]
        for i, (pid, key, arm, sid, at) in enumerate(self._assignments):
            if key == patient_key and not sid:
                started = [s for s in out.sequences.values() if s.pilot_id == pid]
                if started:
                    self._assignments[i] = (pid, key, arm, started[0].sequence_id, at)
        trace = dict(headers or {})
        for op in out.timers:
            self._timers.append(op)
            self._timer_payloads[op.sequence_id] = (
                patient_key,
                {"clinic_id": clinic_id, "trace": trace},
            )
        self._steps.extend(out.steps)
        self._activity.extend((a, clinic_id) for a in out.activity)
        corr = _uuid(correlation) if cause is None else None
        for payload in out.events:
            if isinstance(payload, SequenceStarted) and payload.pilot_id and not payload.pilot_plan:
                # Metrics numbers the pilot's weeks and screens its previous weeks from this.
                plan = self._plan_of(payload.pilot_id)
                if plan is not None:
                    payload = payload.model_copy(update={"pilot_plan": plan})
            if cause is not None:
                event = cause.caused(payload, occurred_at=now)
            else:
                event = new_event(
                    payload,
                    clinic_id=clinic_id,
                    patient_key=patient_key,
                    occurred_at=now,
                    correlation_id=corr,
                )
            self._staged.append((event, trace))
            if isinstance(payload, SendStep):
                self._counts.append((clinic_id, None))
            elif isinstance(payload, SequenceStopped):
                self._counts.append((clinic_id, payload.reason.value))

    async def flush(self) -> None:
        s = self.session
        await state.save_sequences(s, self._seqs_changed.values(), self._stored)
        await state.save_patients(s, (self.patients[k] for k in sorted(self._patients_changed)))
        clinic_of_seq = {i: q.clinic_id for i, q in self.by_id.items()}
        await state.save_steps(s, self._steps, clinic_of_seq)
        await state.add_activity(s, self._activity)
        await state.apply_timers(s, self._timers, self._timer_payloads)
        # Only patients whose sequence actually started count against the cohort.
        recorded = [a for a in self._assignments if a[3]]
        for pilot in self._pilots_changed.values():
            joined = sum(1 for a in recorded if a[0] == pilot.pilot_id)
            enrolled = self._enrolled_before[pilot.pilot_id] + joined
            await pilots.save(s, replace(pilot, enrolled=enrolled))
        await pilots.record_assignments(s, recorded)
        await screenings.record_screenings(s, self._screenings)
        await self.runtime.outbox.stage_batch(s, self._staged)
        for clinic, reason in self._counts:
            if reason is None:
                STEPS_COMMANDED.labels(clinic).inc()
            else:
                SEQUENCES_STOPPED.labels(clinic, reason).inc()


def _uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
