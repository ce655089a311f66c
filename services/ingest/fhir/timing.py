"""When a FHIR request or plan activity wants something done: a date, an interval, a recurrence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.ingest.fhir.context import DocumentContext
from services.ingest.mapping.timing import days_of, spoken_interval


@dataclass(frozen=True)
class When:
    due_on: date | None = None
    interval_days: int | None = None
    recurring: bool = False
    count: int | None = None  # how many times (a Timing's repeat.count)

    @property
    def known(self) -> bool:
        return self.due_on is not None or self.interval_days is not None


def when(
    doc: DocumentContext,
    *,
    date_time: Any = None,
    period: Any = None,
    timing: Any = None,
    text: str | None = None,
) -> When:
    """From occurrence[x] / scheduled[x]: dateTime, Period, Timing, or words ("in 6 months")."""
    due = doc.day(date_time) or (doc.day(period.start) if period is not None else None)
    interval: int | None = None
    recurring = False
    count: int | None = None
    if timing is not None:
        events = timing.event or []
        due = due or (doc.day(events[0]) if events else None)
        repeat = timing.repeat
        if repeat is not None:
            count = repeat.count
            bounds = repeat.boundsDuration
            if bounds is not None:
                interval = days_of(bounds.value, bounds.code or bounds.unit)
            if repeat.boundsPeriod is not None:
                due = due or doc.day(repeat.boundsPeriod.start)
            if repeat.period is not None and repeat.periodUnit:
                every = days_of(repeat.period, repeat.periodUnit)
                if interval is None and every is not None:
                    interval = every
                    recurring = not count and bounds is None and repeat.boundsPeriod is None
        if timing.code is not None and interval is None and due is None:
            text = text or timing.code.text
    if interval is None and due is None and text:
        spoken = spoken_interval(text)
        if spoken is not None:
            interval, recurring = spoken
    return When(due, interval, recurring, count)
