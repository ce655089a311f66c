"""One outreach policy: when a practice may message a patient, how often, and on what consent.

The sequencer plans every step with these functions and the messenger checks every send with
them, from the same snapshot: the sequencer owns each clinic's rules (its ops API stores them)
and puts the clinic's :class:`OutreachPolicy` into every ``SendStep``. So the messenger never
keeps hours or caps of its own, and never sends what the sequencer would not have scheduled.

- Allowed hours are wall-clock hours in the patient's own zone (the clinic's when the patient's
  is unknown): the clinic's hours, narrowed by the stricter hours of the clinic's state and of
  the state of the patient's address. Every computation converts to the local zone, works on the
  local calendar and converts back, so 08:00 is 08:00 on the day the clocks move.
- Caps are rolling windows counted across every sequence: at most ``per_day`` messages in any
  24 hours and ``per_week`` in any 7 days. A window frees a place when its oldest send leaves it.
- Rest periods: after a sequence runs out (``rest_days``) or the patient says no
  (``decline_rest_days``) no new sequence starts.
- Marketing needs the patient's marketing consent on the channel used; care needs none, but an
  opt-out of a channel stops everything on it.

Pure: no clock, no I/O. Every instant is timezone-aware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.events.common import Channel, Purpose, StateCode, TimeZoneName

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
DEFAULT_FROM = time(8, 0)
DEFAULT_UNTIL = time(21, 0)
DEFAULT_ZONE = "America/New_York"

# Stricter hours some US states set for calls and texts. A starting point for the practice's
# counsel to confirm, not legal advice; admins change them through the sequencer's API.
DEFAULT_STATE_HOURS: dict[str, tuple[time, time, str]] = {
    "FL": (time(8), time(20), "Florida Telephone Solicitation Act"),
    "OK": (time(8), time(20), "Oklahoma Telephone Solicitation Act"),
    "MD": (time(8), time(20), "Maryland Stop the Spam Calls Act"),
    "TX": (time(9), time(21), "Texas Business and Commerce Code ch. 301"),
}


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local clock time, without a UTC offset")
    return value


# Allowed hours are read in the patient's (or clinic's) own zone: an offset has no meaning.
LocalTime = Annotated[time, AfterValidator(_local)]


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


class OutreachPolicy(BaseModel):
    """One clinic's outreach policy, as its admins configured it in the sequencer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zone: TimeZoneName = Field(
        DEFAULT_ZONE, description="The clinic's zone: used when the patient's is unknown."
    )
    allowed_from: LocalTime = DEFAULT_FROM
    allowed_until: LocalTime = DEFAULT_UNTIL
    clinic_state: StateCode | None = Field(
        None, description="The clinic's state: its stricter hours narrow the clinic's."
    )
    state_hours: dict[StateCode, tuple[LocalTime, LocalTime]] = Field(
        default_factory=dict,
        description="Stricter allowed hours per US state; they apply to the clinic's state and "
        "to the state of each patient's address.",
    )
    per_day: Annotated[int, Field(ge=0, le=10)] = 1
    per_week: Annotated[int, Field(ge=0, le=30)] = 3
    rest_days: Annotated[int, Field(ge=0, le=365)] = 30
    decline_rest_days: Annotated[int, Field(ge=0, le=730)] = 180

    @model_validator(mode="after")
    def _hours_make_sense(self) -> OutreachPolicy:
        if not self.allowed_from < self.allowed_until:
            raise ValueError("allowed_from must be before allowed_until")
        for code, (start, end) in self.state_hours.items():
            if not start < end:
                raise ValueError(f"state_hours.{code}: allowed_from must be before allowed_until")
        return self

    @property
    def clinic_hours(self) -> AllowedHours:
        return AllowedHours(self.allowed_from, self.allowed_until)

    def hours_for(self, states: Iterable[str | None]) -> AllowedHours | None:
        """The clinic's hours narrowed by its own state's and by each given state's (the state
        of the patient's address). A state without stricter hours leaves them as they are.

        None when no moment is left that the clinic and every one of these states allow (the
        sequencer's API refuses a clinic whose hours miss a state's, but a patient's two
        addresses can still name states that share no hours): then nothing may be sent, rather
        than a moment one of them forbids."""
        hours = self.clinic_hours
        for code in dict.fromkeys((self.clinic_state, *states)):
            found = self.state_hours.get(code) if code else None
            if found is None:
                continue
            start, end = max(hours.start, found[0]), min(hours.end, found[1])
            if not start < end:
                return None
            hours = AllowedHours(start, end)
        return hours

    def conflicts(self) -> list[str]:
        """The states whose hours do not overlap the clinic's (a patient there could only be
        messaged outside the clinic's own hours), for the configuration API to refuse."""
        return [code for code in sorted(self.state_hours) if self.hours_for((code,)) is None]

    def zone_for(self, patient_zone: str | None) -> ZoneInfo:
        return ZoneInfo(patient_zone or self.zone)


def default_state_hours() -> dict[str, tuple[time, time]]:
    return {code: (start, end) for code, (start, end, _note) in DEFAULT_STATE_HOURS.items()}


DEFAULT_POLICY = OutreachPolicy(state_hours=default_state_hours())
"""The policy of a clinic nobody has configured (and of commands older than the snapshot)."""


# --- local time ------------------------------------------------------------------------------


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


def next_allowed_everywhere(
    at: datetime, zones: Collection[ZoneInfo], hours: AllowedHours
) -> datetime | None:
    """The first instant at or after ``at`` allowed in every one of ``zones`` (the zone the
    sequencer planned in and a newer one the messenger knows); None when they share no hours
    within the next weeks."""
    for _ in range(64):
        moved = at
        for zone in zones:
            moved = next_allowed(moved, zone, hours)
        if moved == at:
            return at
        at = moved
    return None


# --- caps ------------------------------------------------------------------------------------


def cap_release(
    sends: Iterable[datetime], at: datetime, per_day: int, per_week: int
) -> datetime | None:
    """When a message at ``at`` would first respect both caps; None if it already does.

    A cap of 0 means no cap on that window."""
    later: list[datetime] = []
    times = sorted(sends)
    for window, cap in ((DAY, per_day), (WEEK, per_week)):
        if cap <= 0:
            continue
        inside = [t for t in times if at - window < t <= at]
        if len(inside) >= cap:
            later.append(inside[len(inside) - cap] + window)
    return max(later) if later else None


# --- the two questions: when may it go, and may it go now ------------------------------------


def earliest_send(
    policy: OutreachPolicy,
    at: datetime,
    *,
    zone: ZoneInfo,
    states: Iterable[str | None] = (),
    sends: Iterable[datetime] = (),
    rest_until: datetime | None = None,
) -> datetime:
    """The first instant at or after ``at`` that respects rest, allowed hours and caps (what the
    sequencer schedules a step for). With no allowed hours left (``hours_for`` is None) it plans
    in the clinic's own hours; the messenger's check then refuses the step day after day until
    it expires: never sent at a moment a state forbids."""
    hours = policy.hours_for(states) or policy.clinic_hours
    counted = list(sends)
    for _ in range(64):  # each pass moves forward; a handful always suffices
        if rest_until is not None and at < rest_until:
            at = rest_until
        at = next_allowed(at, zone, hours)
        released = cap_release(counted, at, policy.per_day, policy.per_week)
        if released is None:
            return at
        at = released
    raise RuntimeError("no allowed moment found for a step")  # unreachable with sane rules


class Hold(StrEnum):
    """Why a message may not go now (it may later)."""

    quiet_hours = "quiet_hours"
    frequency_cap = "frequency_cap"


@dataclass(frozen=True)
class NotNow:
    hold: Hold
    retry_after: datetime | None


def send_refusal(
    policy: OutreachPolicy,
    now: datetime,
    *,
    zones: Collection[ZoneInfo],
    states: Iterable[str | None] = (),
    sends: Iterable[datetime] = (),
) -> NotNow | None:
    """None when a message may go at ``now`` (what the messenger checks at send time); else
    what holds it and the first moment it may go. ``zones``: every zone the patient may be in
    (the one the step was planned in and the one on the contact card); all must allow it."""
    hours = policy.hours_for(states)
    if hours is None:
        # No moment both the clinic and each state allow: refuse, and look again tomorrow (the
        # patient's address may be corrected meanwhile), never at once.
        return NotNow(Hold.quiet_hours, now + DAY)
    allowed_at = next_allowed_everywhere(now, zones, hours)
    if allowed_at is None:
        # The zones share no hours (a patient who moved far): refuse, and look again when the
        # freshest zone (last) next opens, never at once (that would only refuse again).
        last = list(zones)[-1]
        opens = next_allowed(now, last, hours)
        if opens == now:
            tomorrow = now.astimezone(last).date() + DAY
            opens = max(local_moment(tomorrow, hours.start, last, now), now + timedelta(minutes=1))
        return NotNow(Hold.quiet_hours, opens)
    if allowed_at != now:
        return NotNow(Hold.quiet_hours, allowed_at)
    released = cap_release(sends, now, policy.per_day, policy.per_week)
    if released is not None:
        return NotNow(Hold.frequency_cap, released)
    return None


# --- consent ---------------------------------------------------------------------------------


class ConsentRefusal(StrEnum):
    opted_out = "opted_out"
    no_consent = "no_consent"  # marketing without marketing consent on this channel


def consent_refusal(
    purpose: Purpose,
    channel: Channel,
    *,
    opted_out: Collection[Channel],
    marketing_consent: Collection[Channel],
) -> ConsentRefusal | None:
    """May a message of ``purpose`` go on ``channel``? Marketing consent is per channel: a
    patient may accept offers by e-mail and not by text."""
    if channel in opted_out:
        return ConsentRefusal.opted_out
    if purpose is Purpose.marketing and channel not in marketing_consent:
        return ConsentRefusal.no_consent
    return None


def rest_after(days: int, now: datetime, current: datetime | None) -> datetime | None:
    """The rest a patient has after a sequence ends: ``days`` from now, never shortening one
    already running; None when there is no rest."""
    if days <= 0:
        return current
    until = now + timedelta(days=days)
    return until if current is None or current < until else current
