"""The rules a step must satisfy before it is scheduled: allowed hours, caps, rest, snooze bounds.

Allowed hours are wall-clock hours in the patient's own zone, so every computation converts to
that zone, works on the local calendar and converts back: a step planned "3 days later" keeps its
local hour across a daylight-saving change, and 08:00 is 08:00 on the day the clocks move.

Caps are rolling windows, like the messenger's send-time check: at most ``per_day`` outreach
messages in any 24 hours and ``per_week`` in any 7 days, counted across every sequence the patient
has had. A window frees a place when its oldest counted send leaves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
DEFAULT_FROM = time(8, 0)
DEFAULT_UNTIL = time(21, 0)


@dataclass(frozen=True)
class AllowedHours:
    """The local hours outreach may go out: ``start`` inclusive to ``end`` exclusive."""

    start: time = DEFAULT_FROM
    end: time = DEFAULT_UNTIL

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("allowed hours must start before they end (same day)")

    def narrowed_by(self, other: AllowedHours | None) -> AllowedHours:
        """The hours allowed by both (a state's law narrows whatever the clinic chose)."""
        if other is None:
            return self
        start, end = max(self.start, other.start), min(self.end, other.end)
        if not start < end:
            raise ValueError("the clinic's hours and its state's hours do not overlap")
        return AllowedHours(start, end)


@dataclass(frozen=True)
class Rules:
    """Everything the state machine needs to know about one clinic's outreach policy."""

    zone: str = "America/New_York"  # the clinic's zone: used when the patient's is unknown
    hours: AllowedHours = AllowedHours()
    per_day: int = 1
    per_week: int = 3
    rest_days: int = 30  # after a sequence ran out or expired
    decline_rest_days: int = 180  # after "no" or "no longer needed"
    snooze_default_days: int = 30
    snooze_min_days: int = 1
    snooze_max_days: int = 90
    concern_hold_hours: int = 48  # a concern was raised in a reply: give people time first
    booking_hold_days: int = 7  # the patient asked for a slot: wait for the EHR to confirm
    close_after_hours: int = 72  # after the last step, time for replies before completing
    step_lifetime_hours: int = 24
    recovery_head_start_hours: int = 48  # service recovery: a person calls first
    undeliverable_after: int = 2  # permanent delivery failures that end a sequence

    @property
    def step_lifetime(self) -> timedelta:
        return timedelta(hours=self.step_lifetime_hours)

    def tz(self, patient_zone: str | None) -> ZoneInfo:
        return ZoneInfo(patient_zone or self.zone)


def add_local(at: datetime, delay: timedelta, zone: ZoneInfo) -> datetime:
    """``at`` + ``delay`` where whole days move the local calendar (same wall-clock hour)."""
    days = timedelta(days=delay.days)
    rest = delay - days
    local = at.astimezone(zone)
    moved = datetime.combine(local.date() + days, local.time(), tzinfo=zone) if days else local
    return (moved + rest).astimezone(at.tzinfo)


def local_moment(day: date, at: time, zone: ZoneInfo, like: datetime) -> datetime:
    """``day`` at wall-clock ``at`` in ``zone``, as an instant in ``like``'s time zone.

    A wall-clock time inside a spring-forward gap maps to the instant just after the gap.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(like.tzinfo)


def next_allowed(at: datetime, zone: ZoneInfo, hours: AllowedHours) -> datetime:
    """The first instant at or after ``at`` inside ``hours`` of the local day in ``zone``."""
    local = at.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if wall < hours.start:
        candidate = local_moment(local.date(), hours.start, zone, at)
    elif wall >= hours.end:
        candidate = local_moment(local.date() + DAY, hours.start, zone, at)
    else:
        return at
    # Round-tripping through a gap can land before ``at``; never go back in time.
    return max(candidate, at)


def is_allowed(at: datetime, zone: ZoneInfo, hours: AllowedHours) -> bool:
    return next_allowed(at, zone, hours) == at


def cap_release(sends: Iterable[datetime], at: datetime, rules: Rules) -> datetime | None:
    """When a message at ``at`` would first respect both caps; None if it already does."""
    later: list[datetime] = []
    times = sorted(sends)
    for window, cap in ((DAY, rules.per_day), (WEEK, rules.per_week)):
        if cap <= 0:
            continue
        inside = [t for t in times if at - window < t <= at]
        if len(inside) >= cap:
            later.append(inside[len(inside) - cap] + window)
    return max(later) if later else None


def within_caps(sends: Iterable[datetime], at: datetime, rules: Rules) -> bool:
    return cap_release(sends, at, rules) is None


def plan(
    earliest: datetime,
    zone: ZoneInfo,
    rules: Rules,
    sends: Iterable[datetime] = (),
    rest_until: datetime | None = None,
) -> datetime:
    """The first instant at or after ``earliest`` that respects rest, allowed hours and caps."""
    counted = list(sends)
    at = earliest
    for _ in range(64):  # each pass moves forward; a handful always suffices
        if rest_until is not None and at < rest_until:
            at = rest_until
        at = next_allowed(at, zone, rules.hours)
        released = cap_release(counted, at, rules)
        if released is None:
            return at
        at = released
    raise RuntimeError("no allowed moment found for a step")  # unreachable with sane rules


def snooze_until(asked: date | None, now: datetime, zone: ZoneInfo, rules: Rules) -> datetime:
    """When a "remind me later" ends: the asked-for local date, bounded, at opening hour."""
    today = now.astimezone(zone).date()
    day = asked if asked is not None else today + timedelta(days=rules.snooze_default_days)
    day = min(
        max(day, today + timedelta(days=rules.snooze_min_days)),
        today + timedelta(days=rules.snooze_max_days),
    )
    return local_moment(day, rules.hours.start, zone, now)
