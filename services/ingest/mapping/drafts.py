"""What a route's mapping returns, and how it becomes final facts once history is known."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from services.ingest.domain import Fact, Problem, Refused
from services.ingest.mapping.appointments import AppointmentFacts, AppointmentVersion, decide

Draft = Fact | AppointmentFacts


@dataclass(frozen=True)
class Mapped:
    """A source message's facts-to-be, plus notes on what was deliberately left unmapped."""

    drafts: tuple[Draft, ...]
    notes: tuple[Problem, ...] = ()

    @property
    def appointment_keys(self) -> set[str]:
        return {d.key for d in self.drafts if isinstance(d, AppointmentFacts)}


def finalize(
    mapped: Mapped, history: MutableMapping[str, list[AppointmentVersion]]
) -> tuple[list[Fact], list[tuple[str, AppointmentVersion]]]:
    """Facts in draft order and the appointment versions to remember, all or nothing.

    ``history`` (appointment key -> versions known so far) is extended with this message's
    versions only when the whole message maps, so the next message of a batch sees them.
    """
    facts: list[Fact] = []
    added: list[tuple[str, AppointmentVersion]] = []
    problems: list[Problem] = []
    for draft in mapped.drafts:
        if isinstance(draft, Fact):
            facts.append(draft)
            continue
        known = history.get(draft.key, []) + [v for k, v in added if k == draft.key]
        try:
            fact, version = decide(draft, known)
        except Refused as exc:
            problems.extend(exc.problems)
            continue
        added.append((draft.key, version))
        if fact is not None:
            facts.append(fact)
    if problems:
        raise Refused(problems)
    for key, version in added:
        history.setdefault(key, []).append(version)
    return facts, added
