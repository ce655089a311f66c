"""The rules a step must satisfy before it is scheduled: allowed hours, caps, rest, snooze bounds.

The hours, caps and rest themselves are the one outreach policy in ``shared.outreach_policy``
(the messenger checks every send with the same functions); ``Rules`` adds what only sequencing
needs (snoozes, holds, when to close) and turns itself into the :class:`OutreachPolicy` snapshot
that travels in every SendStep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from shared.outreach_policy import (
    DAY,
    DEFAULT_FROM,
    DEFAULT_UNTIL,
    WEEK,
    AllowedHours,
    OutreachPolicy,
    add_local,
    default_state_hours,
    earliest_send,
    is_allowed,
    local_moment,
    next_allowed,
)
from shared.outreach_policy import cap_release as _cap_release

__all__ = [
    "DAY",
    "DEFAULT_FROM",
    "DEFAULT_UNTIL",
    "WEEK",
    "AllowedHours",
    "Rules",
    "add_local",
    "cap_release",
    "is_allowed",
    "local_moment",
    "next_allowed",
    "plan",
    "snooze_until",
    "within_caps",
]


@dataclass(frozen=True)
class Rules:
    """Everything the state machine needs to know about one clinic's outreach policy."""

    zone: str = "America/New_York"  # the clinic's zone: used when the patient's is unknown
    hours: AllowedHours = field(default_factory=AllowedHours)  # narrowed by its own state's
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
    clinic_state: str | None = None
    # Stricter hours per US state: the clinic's state and each patient's address state.
    state_hours: Mapping[str, tuple[time, time]] = field(
        default_factory=default_state_hours, hash=False
    )

    @property
    def step_lifetime(self) -> timedelta:
        return timedelta(hours=self.step_lifetime_hours)

    def tz(self, patient_zone: str | None) -> ZoneInfo:
        return ZoneInfo(patient_zone or self.zone)

    @cached_property
    def policy(self) -> OutreachPolicy:
        """The snapshot the messenger checks sends against (see shared.outreach_policy)."""
        return OutreachPolicy(
            zone=self.zone,
            allowed_from=self.hours.start,
            allowed_until=self.hours.end,
            clinic_state=self.clinic_state,
            state_hours=dict(self.state_hours),
            per_day=self.per_day,
            per_week=self.per_week,
            rest_days=self.rest_days,
            decline_rest_days=self.decline_rest_days,
        )

    def hours_for(self, state: str | None) -> AllowedHours:
        """The hours for a patient whose address is in ``state`` (None: unknown)."""
        if not state:
            return self.hours
        # None only for states whose hours miss the clinic's (the API refuses those): the
        # opening hour is then the clinic's; the send-time check refuses the step anyway.
        return self.policy.hours_for((state,)) or self.hours


def cap_release(sends: Iterable[datetime], at: datetime, rules: Rules) -> datetime | None:
    """When a message at ``at`` would first respect both caps; None if it already does."""
    return _cap_release(sends, at, rules.per_day, rules.per_week)


def within_caps(sends: Iterable[datetime], at: datetime, rules: Rules) -> bool:
    return cap_release(sends, at, rules) is None


def plan(
    earliest: datetime,
    zone: ZoneInfo,
    rules: Rules,
    sends: Iterable[datetime] = (),
    rest_until: datetime | None = None,
    state: str | None = None,
) -> datetime:
    """The first instant at or after ``earliest`` that respects rest, allowed hours and caps."""
    return earliest_send(
        rules.policy,
        earliest,
        zone=zone,
        states=(state,),
        sends=sends,
        rest_until=rest_until,
    )


def snooze_until(
    asked: date | None, now: datetime, zone: ZoneInfo, rules: Rules, state: str | None = None
) -> datetime:
    """When a "remind me later" ends: the asked-for local date, bounded, at opening hour."""
    today = now.astimezone(zone).date()
    day = asked if asked is not None else today + timedelta(days=rules.snooze_default_days)
    day = min(
        max(day, today + timedelta(days=rules.snooze_min_days)),
        today + timedelta(days=rules.snooze_max_days),
    )
    return local_moment(day, rules.hours_for(state).start, zone, now)
