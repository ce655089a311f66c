"""Who the patient is in the EHR: Revisit's record numbers, searched in the EHR as
``Patient?identifier=<system>|<value>``, must lead to exactly one active patient.

None or several stop the booking: a person checks (an escalation). A link that was found is
cached and searched again after a while, so a merge or a corrected record is noticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events.common import RecordIdentifier

RECHECK_AFTER = timedelta(hours=24)


class Match(StrEnum):
    one = "one"
    none = "none"  # no patient with these record numbers (or none that is active)
    several = "several"  # the numbers lead to more than one patient
    no_identifier = "no_identifier"  # Revisit knows no record number the EHR can search


@dataclass(frozen=True)
class Identity:
    match: Match
    patient_id: str | None = None  # the EHR's FHIR Patient id when ``match`` is one
    matched_on: str | None = None  # the system searched, never the value


def search_tokens(
    identifiers: Iterable[RecordIdentifier], systems: Mapping[str, str]
) -> list[tuple[str, str]]:
    """``(system, system|value)`` to search, medical record numbers first.

    The system is the connection's mapping of the assigning authority (or of the source's own
    system), else the source's system when it is already a URI.
    """
    ordered = sorted(identifiers, key=lambda i: (i.type or "") != "MR")
    out: list[tuple[str, str]] = []
    for identifier in ordered:
        system = systems.get(identifier.assigner or "") or systems.get(identifier.system or "")
        if system is None and identifier.system and ":" in identifier.system:
            system = identifier.system
        token = f"{system}|{identifier.value}" if system else None
        if system and token and (system, token) not in out:
            out.append((system, token))
    return out


def decide(found: Mapping[str, set[str]]) -> Identity:
    """``found``: each searched system -> the active patient ids it matched."""
    if not found:
        return Identity(Match.no_identifier)
    everyone = set().union(*found.values())
    if len(everyone) > 1:
        return Identity(Match.several)
    if not everyone:
        return Identity(Match.none)
    patient_id = next(iter(everyone))
    system = next(s for s, ids in found.items() if patient_id in ids)
    return Identity(Match.one, patient_id, system)


def still_fresh(
    checked_at: datetime | None, now: datetime, after: timedelta = RECHECK_AFTER
) -> bool:
    return checked_at is not None and now - checked_at < after
