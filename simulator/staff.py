"""The practice's people at the other end of escalations: they take the page, then close the case.

Urgent and high cases (red flags, clinical questions) are taken within minutes at any hour, as
the on-call dermatologist and the nurse line do; the rest wait for business hours. A case is
closed a while after it was taken, with the outcome a person would record: a clinical case
answered, a failed booking booked by phone, a poor experience heard out (so outreach may resume,
which is what lets the segmenter surface the needs it held for service recovery). Delays are
fixed by the seed and the case id, so one seed gives the same staff.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx

if TYPE_CHECKING:
    from simulator.engine import SimStats

log = logging.getLogger("simulator")

# Minutes from the first page to taking it, by severity (within business hours for the last two).
TAKES = {"urgent": (2, 10), "high": (5, 40), "normal": (20, 120), "low": (30, 240)}
CLOSES = (15, 180)  # minutes from taking a case to closing it
ANY_HOUR = frozenset({"urgent", "high"})
OUTCOMES = {"booking_failed": "booked"}  # everything else a person answers
BUSINESS_HOURS = range(8, 18)


class Act(StrEnum):
    acknowledge = "acknowledge"
    resolve = "resolve"


def _minutes(seed: int, case_id: str, purpose: str, span: tuple[int, int]) -> timedelta:
    digest = hashlib.blake2b(f"{seed}|{case_id}|{purpose}".encode(), digest_size=8).digest()
    low, high = span
    return timedelta(minutes=low + int.from_bytes(digest, "big") % (high - low + 1))


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def next_act(case: dict[str, Any], now: datetime, zone: ZoneInfo, seed: int) -> Act | None:
    """What the practice's staff do about an open case at ``now``, if anything."""
    severity = str(case.get("severity") or "normal")
    # Keyed by whose case and when, not by its id (ids can differ between runs of one seed).
    case_id = f"{case.get('patient_key')}|{case.get('case_type')}|{case.get('raised_at')}"
    taken = _instant(case.get("acknowledged_at"))
    if taken is not None:
        closes = taken + _minutes(seed, case_id, "close", CLOSES)
        return Act.resolve if now >= closes else None
    local = now.astimezone(zone)
    at_work = local.weekday() < 5 and local.hour in BUSINESS_HOURS
    if severity not in ANY_HOUR and not at_work:
        return None
    since = _instant(case.get("first_paged_at")) or _instant(case["raised_at"])
    if since is None:
        return None
    span = TAKES.get(severity, TAKES["normal"])
    return Act.acknowledge if now >= since + _minutes(seed, case_id, "take", span) else None


@dataclass
class Staff:
    http: httpx.AsyncClient
    escalation_url: str
    clinic_id: str
    zone: ZoneInfo
    seed: int
    stats: SimStats  # counts what the staff did (cases_taken, cases_closed)

    async def work(self, now: datetime) -> bool:
        """Take and close what is due; whether anything was done."""
        response = await self.http.get(
            f"{self.escalation_url}/cases",
            params={"clinic_id": self.clinic_id, "state": "open", "limit": 500},
        )
        if response.status_code != 200:
            log.warning("the case queue did not answer: HTTP %d", response.status_code)
            return False
        acted = False
        for case in response.json()["cases"]:
            act = next_act(case, now, self.zone, self.seed)
            if act is None:
                continue
            url = f"{self.escalation_url}/cases/{case['escalation_id']}/{act.value}"
            body = None
            if act is Act.resolve:
                body = {"outcome": OUTCOMES.get(str(case["case_type"]), "answered")}
            answer = await self.http.post(url, json=body)
            if answer.status_code >= 400:
                log.warning("staff could not %s a case: HTTP %d", act.value, answer.status_code)
                continue
            acted = True
            if act is Act.acknowledge:
                self.stats.cases_taken += 1
            else:
                self.stats.cases_closed += 1
        return acted
