"""Real eligibilities through the pure cores: segmenter rules -> sequencer -> the messenger's words.

Nothing here is built by hand past the EHR facts: the segmenter's own rules make the
eligibility, the sequencer's own state machine makes each SendStep, and the messenger's default
library, values and final checks make the words, exactly as the services do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.messenger.domain.library import default_library
from services.messenger.domain.templates import (
    MONTHS,
    SERVICE_NAMES,
    Rendered,
    day_name,
    select_template,
)
from services.messenger.domain.words import PracticeFacts, Refused, compose, source_day, step_values
from services.sequencer.domain.rules import Rules
from shared.events import Envelope, Payload
from shared.events.common import Channel
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.events.outreach import SendStep
from tests.segmenter.factory import run
from tests.sequencer.helpers import Driver

ZONE = "America/Chicago"
PRACTICE = PracticeFacts("Lakeside Dermatology", "+15555550100", "https://book.example.org", ZONE)
PROVIDERS = {"dr-1": "Dr. Rivera", "dr-2": "Dr. Okafor", "dr-3": "Dr. Nair"}
LIBRARY = default_library()


def eligibility(events: list[Envelope[Any]], now: datetime) -> PatientBecameEligible:
    """The segmenter's primary eligibility for this chart at ``now``."""
    _, out = run(events, now)
    found = [p for p in out if isinstance(p, PatientBecameEligible)]
    assert len(found) == 1, f"expected one eligibility, got {out}"
    return found[0]


def commands(
    first: Payload,
    now: datetime,
    *,
    later: list[Payload] = (),
    days: int = 45,  # type: ignore[assignment]
) -> tuple[Driver, list[tuple[datetime, SendStep]]]:
    """Every SendStep the sequencer commands for ``first`` (then ``later``) over ``days``."""
    driver = Driver(now=now, rules=Rules(zone=ZONE), key="clinic-t:pt-1")
    driver.feed(first)
    for payload in later:
        driver.feed(payload)
    driver.advance(timedelta(days=days))
    return driver, driver.sends()


def words(cmd: SendStep, language: str, at: datetime) -> Rendered | Refused:
    """What the messenger would send for ``cmd`` to a patient reading ``language``."""
    candidates = [
        t
        for t in LIBRARY
        if (t.workflow_key, t.step, t.channel) == (cmd.workflow_key, cmd.step, cmd.channel)
    ]
    template = select_template(
        candidates, language=language, tone=cmd.tone, urgency=cmd.clinical_urgency
    )
    assert template is not None and template.language == language
    values = step_values(
        cmd,
        first_name="Ana",
        practice=PRACTICE,
        provider_name=PROVIDERS.get(cmd.provider_id or ""),
        language=language,
        now=at,
    )
    return compose(template, cmd, values, sms_max_chars=320, first_contact_max_chars=459)


_EN_DATE = re.compile(r"\b(" + "|".join(MONTHS["en"].split()) + r") (\d{1,2})(?:, (\d{4}))?")
_ES_DATE = re.compile(r"\b(\d{1,2}) de (" + "|".join(MONTHS["es"].split()) + r")(?: de (\d{4}))?")


def dates_in(text: str, language: str, today: date) -> list[date]:
    """Every calendar date the text states (in the library's own formats)."""
    months = MONTHS[language].split()
    found = (
        [(m, d, y) for m, d, y in _EN_DATE.findall(text)]
        if language == "en"
        else [(m, d, y) for d, m, y in _ES_DATE.findall(text)]
    )
    return [date(int(y or today.year), months.index(m) + 1, int(d)) for m, d, y in found]


@dataclass(frozen=True)
class Facts:
    """What the eligibility documents, as the words may state it."""

    dates: frozenset[date]
    provider: str | None
    service: str


def documented_facts(cmd: SendStep, elig: PatientBecameEligible, language: str) -> Facts:
    from zoneinfo import ZoneInfo

    assert cmd.documented == elig.documented  # the command carries the eligibility's facts
    allowed = set()
    if elig.documented is not None:
        recorded = source_day(cmd, ZoneInfo(ZONE))
        assert recorded is not None
        allowed.add(recorded)
        if elig.documented.due_on is not None:
            allowed.add(elig.documented.due_on)
    return Facts(
        frozenset(allowed),
        PROVIDERS.get(elig.provider_id or ""),
        SERVICE_NAMES[language][elig.service_line],
    )


def other_providers(provider: str | None) -> list[str]:
    return [name for name in PROVIDERS.values() if name != provider]


def formatted(day: date, language: str, today: date) -> str:
    return day_name(day, language, today=today)


def left(payloads: list[Payload]) -> list[PatientLeftSegment]:
    return [p for p in payloads if isinstance(p, PatientLeftSegment)]


__all__ = [
    "PROVIDERS",
    "Channel",
    "Facts",
    "commands",
    "dates_in",
    "documented_facts",
    "eligibility",
    "formatted",
    "left",
    "other_providers",
    "words",
]
