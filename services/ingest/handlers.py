"""Ingest's I/O shell: de-duplicate source messages, map them against the appointment history,
store them and stage their events, all in one transaction per batch.

Each submission ends in one outcome: accepted (events staged), duplicate (the same message
again: nothing staged, the first event ids returned), conflict (its identity - MSH-10, a Bundle
id, an Idempotency-Key - was used before for different content: refused), or refused (content).
Refused messages are kept (raw, with their problems) so that they can be replayed after a fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import domain, repository
from services.ingest.domain import Problem, Refused
from services.ingest.mapping.appointments import AppointmentVersion
from services.ingest.mapping.drafts import finalize
from services.ingest.submissions import Submission
from shared.events import Envelope
from shared.outbox import Outbox
from shared.runtime import Runtime
from shared.telemetry import inject_headers

Status = Literal["accepted", "duplicate", "conflict", "refused"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    event_ids: list[str] = field(default_factory=list)
    notes: tuple[Problem, ...] = ()
    problems: tuple[Problem, ...] = ()
    reject: bool = False  # HL7: AR rather than AE

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "duplicate")

    @property
    def hl7_code(self) -> str:
        """MSA-1: AA accepted (or seen before), AR rejected, AE fix and resend."""
        if self.ok:
            return "AA"
        return "AR" if self.reject else "AE"


@dataclass(frozen=True)
class Group:
    """One body's submissions, whether they are accepted all together or not at all, and the
    trace context of the request that brought them (its events carry it to every consumer)."""

    submissions: Sequence[Submission]
    all_or_nothing: bool = False
    trace: Mapping[str, str] = field(default_factory=dict)


async def accept(
    runtime: Runtime, submissions: Sequence[Submission], *, all_or_nothing: bool = False
) -> list[Outcome]:
    """Store and publish one body's ``submissions`` in one transaction; an outcome each."""
    group = Group(submissions, all_or_nothing, inject_headers())
    return (await accept_groups(runtime, [group]))[0]


async def accept_groups(runtime: Runtime, groups: Sequence[Group]) -> list[list[Outcome]]:
    """Several bodies (from concurrent requests or connections) in one transaction."""
    async with runtime.sessions() as session, session.begin():
        return await accept_groups_in(session, runtime.outbox, groups)


async def accept_groups_in(
    session: AsyncSession, outbox: Outbox, groups: Sequence[Group], *, keep: bool = True
) -> list[list[Outcome]]:
    """Outcomes per group. A group that must be whole and is not is left out entirely (and kept
    as one refused body); the others are decided again without it, so nothing it said (an
    appointment version, say) leaks into what the rest of the batch publishes."""
    flat = [s for group in groups for s in group.submissions]
    keys = list(dict.fromkeys((s.clinic_id, s.source_key) for s in flat if s.source_key))
    wanted = [
        (s.clinic_id, k) for s in flat if s.mapped is not None for k in s.mapped.appointment_keys
    ]
    existing, loaded = await repository.lookup_batch(session, keys, list(dict.fromkeys(wanted)))
    left_out: dict[int, list[Outcome]] = {}
    while True:
        history: dict[str, dict[str, list[AppointmentVersion]]] = {}
        for (clinic, key), known in loaded.items():
            history.setdefault(clinic, {})[key] = list(known)
        active = [
            (g, s) for g, group in enumerate(groups) if g not in left_out for s in group.submissions
        ]
        outcomes, staged = _decide([s for _, s in active], existing, history)
        broken = {
            g
            for (g, _), o in zip(active, outcomes, strict=True)
            if groups[g].all_or_nothing and not o.ok
        }
        if not broken:
            break
        for g in broken:
            left_out[g] = [o for (h, _), o in zip(active, outcomes, strict=True) if h == g]
    traces = [groups[g].trace for g, _ in active]
    await _commit(session, outbox, [s for _, s in active], outcomes, staged, traces)
    by_group: list[list[Outcome]] = [left_out.get(g, []) for g in range(len(groups))]
    for (g, _), outcome in zip(active, outcomes, strict=True):
        by_group[g].append(outcome)
    if keep:
        for g, group in enumerate(groups):
            await keep_refused(session, group.submissions, by_group[g], whole=g in left_out)
    return by_group


Staged = dict[int, tuple[list[Envelope[Any]], list[tuple[str, str, AppointmentVersion]]]]


def _decide(
    submissions: Sequence[Submission],
    existing: dict[tuple[str, str], repository.StoredSource],
    history: dict[str, dict[str, list[AppointmentVersion]]],
) -> tuple[list[Outcome], Staged]:
    """Each submission's outcome, and the events and versions of those accepted (pure)."""
    outcomes: list[Outcome] = []
    first_in_batch: dict[tuple[str, str], int] = {}
    staged: Staged = {}
    for index, sub in enumerate(submissions):
        pair = (sub.clinic_id, sub.source_key or "")
        if sub.refused is not None or sub.mapped is None:
            outcomes.append(_refused(sub.refused))
        elif pair in existing:
            outcomes.append(_again(sub, existing[pair].fingerprint, existing[pair].event_ids))
        elif pair in first_in_batch:
            first = first_in_batch[pair]
            outcomes.append(_again(sub, submissions[first].fingerprint, outcomes[first].event_ids))
        else:
            first_in_batch[pair] = index
            try:
                facts, versions = finalize(sub.mapped, history.setdefault(sub.clinic_id, {}))
            except Refused as exc:
                outcomes.append(_refused(exc))
                continue
            events = domain.envelopes(
                facts, clinic_id=sub.clinic_id, source_key=pair[1], recorded_at=sub.ctx.received_at
            )
            staged[index] = (events, [(sub.clinic_id, key, v) for key, v in versions])
            ids = [str(e.event_id) for e in events]
            outcomes.append(Outcome("accepted", ids, notes=sub.mapped.notes))
    return outcomes, staged


async def _commit(
    session: AsyncSession,
    outbox: Outbox,
    submissions: Sequence[Submission],
    outcomes: list[Outcome],
    staged: Staged,
    traces: Sequence[Mapping[str, str]],
) -> None:
    rows = [
        repository.NewSource(
            clinic_id=submissions[i].clinic_id,
            source_key=submissions[i].source_key or "",
            route=submissions[i].route,
            raw=submissions[i].raw,
            event_ids=outcomes[i].event_ids,
            received_at=submissions[i].ctx.received_at,
            fingerprint=submissions[i].fingerprint,
        )
        for i in staged
    ]
    versions = [v for _events, found in staged.values() for v in found]
    inserted = await repository.store_batch(session, rows, versions)
    events_out: list[tuple[Envelope[Any], Mapping[str, str]]] = []
    for i, (events, _versions) in staged.items():
        sub = submissions[i]
        if (sub.clinic_id, sub.source_key) not in inserted:
            # Another transaction stored the same message a moment ago: it publishes, not us.
            outcomes[i] = Outcome("duplicate", outcomes[i].event_ids, notes=outcomes[i].notes)
            continue
        events_out += [(event, traces[i]) for event in events]
    await outbox.stage_batch(session, events_out)


def _refused(exc: Refused | None) -> Outcome:
    if exc is None:
        return Outcome("refused", problems=(Problem("(message)", "could not be read"),))
    return Outcome("refused", problems=tuple(exc.problems), reject=exc.reject)


def _again(sub: Submission, fingerprint: str | None, event_ids: list[str]) -> Outcome:
    if fingerprint is None or fingerprint == sub.fingerprint:
        return Outcome("duplicate", list(event_ids))
    problem = Problem(sub.key_loc, "already used for a different message", "205")
    return Outcome("conflict", problems=(problem,), reject=True)


async def keep_refused(
    session: AsyncSession,
    submissions: Sequence[Submission],
    outcomes: Sequence[Outcome],
    *,
    whole: bool,
) -> None:
    """Keep refused messages for replay (``whole``: the submissions came in one body)."""
    refused = [(s, o) for s, o in zip(submissions, outcomes, strict=True) if o.status == "refused"]
    if whole and submissions and any(not o.ok for o in outcomes):
        problems = [p for o in outcomes for p in o.problems]
        first = submissions[0]
        raw = (
            b"\r".join(s.raw for s in submissions)
            if first.route in {"hl7v2", "mllp"}
            else first.raw
        )
        refused = [
            (
                Submission(first.clinic_id, first.route, None, "", raw, first.ctx),
                Outcome("refused", problems=tuple(problems)),
            )
        ]
    await repository.insert_refused(
        session,
        [
            {
                "clinic_id": s.clinic_id,
                "route": s.route,
                "source_key": s.source_key,
                "raw": s.raw,
                "problems": [{"loc": p.loc, "msg": p.msg} for p in o.problems],
                "received_at": s.ctx.received_at,
            }
            for s, o in refused
        ],
    )


async def keep_unstorable(runtime: Runtime, group: Group, outcomes: Sequence[Outcome]) -> None:
    """Keep a body that could not be stored as it was, for a person and for replay: its raw
    bytes and problems, without its identity (which may be what the database refused)."""
    bare = [Submission(s.clinic_id, s.route, None, "", s.raw, s.ctx) for s in group.submissions]
    async with runtime.sessions() as session, session.begin():
        await keep_refused(session, bare, outcomes, whole=False)
