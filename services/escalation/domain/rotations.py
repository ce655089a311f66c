"""On-call rotations: who holds the pager at an instant, and who is paged after them.

A rotation hands the pager from one member to the next every ``shift_days`` days at
``handoff_time`` in the rotation's own time zone, counting from ``anchor_date`` (the day the
first member's first shift starts). Shifts are computed on local dates, so a hand-off stays at
08:00 local across daylight-saving changes. An override (a swap, a holiday cover) puts another
responder on call for an exact interval and wins over the schedule; the latest-starting active
override wins over the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.escalation.domain.model import Target

MAX_FALLBACK_DEPTH = 4


@dataclass(frozen=True)
class Member:
    responder_id: str
    email: str | None = None  # where the e-mail notifier reaches this responder


@dataclass(frozen=True)
class Override:
    override_id: str
    responder_id: str
    starts_at: datetime
    ends_at: datetime

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class Rotation:
    rotation_id: str
    name: str
    time_zone: str
    handoff_time: time
    shift_days: int
    anchor_date: date
    members: tuple[Member, ...]
    overrides: tuple[Override, ...] = ()
    fallback_rotation_id: str | None = None
    notifier_ids: tuple[str, ...] = ()  # empty: the clinic's default notifiers

    def member(self, responder_id: str) -> Member | None:
        return next((m for m in self.members if m.responder_id == responder_id), None)


@dataclass(frozen=True)
class Shift:
    responder_id: str
    starts_at: datetime
    ends_at: datetime
    source: str  # "schedule" | "override"


def scheduled_index(rotation: Rotation, at: datetime) -> tuple[int, date] | None:
    """Index of the member whose shift covers ``at``, and the local date that shift began."""
    if not rotation.members:
        return None
    local = at.astimezone(ZoneInfo(rotation.time_zone))
    day = local.date()
    if local.time().replace(tzinfo=None) < rotation.handoff_time:
        day -= timedelta(days=1)  # before today's hand-off, yesterday's shift still runs
    shifts = (day - rotation.anchor_date).days // rotation.shift_days  # floors before the anchor
    start = rotation.anchor_date + timedelta(days=shifts * rotation.shift_days)
    return shifts % len(rotation.members), start


def scheduled_shift(rotation: Rotation, at: datetime) -> Shift | None:
    found = scheduled_index(rotation, at)
    if found is None:
        return None
    index, start = found
    tz = ZoneInfo(rotation.time_zone)
    end = start + timedelta(days=rotation.shift_days)
    return Shift(
        rotation.members[index].responder_id,
        datetime.combine(start, rotation.handoff_time, tzinfo=tz),
        datetime.combine(end, rotation.handoff_time, tzinfo=tz),
        "schedule",
    )


def on_call(rotation: Rotation, at: datetime) -> Shift | None:
    """Who is on call at ``at``: an active override, else the scheduled member (or nobody)."""
    active = [o for o in rotation.overrides if o.active_at(at)]
    if active:
        o = max(active, key=lambda o: (o.starts_at, o.override_id))
        return Shift(o.responder_id, o.starts_at, o.ends_at, "override")
    return scheduled_shift(rotation, at)


def _rotation_chain(rotation: Rotation, at: datetime) -> list[Target]:
    """The on-call responder, then the next person in the rotation."""
    shift = on_call(rotation, at)
    if shift is None:
        return []
    chain = [Target(rotation.rotation_id, shift.responder_id)]
    found = scheduled_index(rotation, at)
    if found is not None:
        index, _ = found
        n = len(rotation.members)
        # With an override on call, the scheduled member is the "next person".
        start = index if shift.source == "override" else index + 1
        for k in range(n):
            candidate = rotation.members[(start + k) % n].responder_id
            if candidate != shift.responder_id:
                chain.append(Target(rotation.rotation_id, candidate))
                break
    return chain


def escalation_chain(
    rotations: Mapping[str, Rotation], rotation_id: str, at: datetime
) -> list[Target]:
    """Everyone to page, in order, when nobody acknowledges: the rotation's on-call responder,
    the next person in it, then the same for its fallback rotation, and so on.

    A responder appears once (the first time); a loop of fallbacks is cut.
    """
    chain: list[Target] = []
    seen_rotations: set[str] = set()
    seen_people: set[str] = set()
    current: str | None = rotation_id
    while current and current not in seen_rotations and len(seen_rotations) <= MAX_FALLBACK_DEPTH:
        seen_rotations.add(current)
        rotation = rotations.get(current)
        if rotation is None:
            break
        for target in _rotation_chain(rotation, at):
            if target.responder_id not in seen_people:
                seen_people.add(target.responder_id)
                chain.append(target)
        current = rotation.fallback_rotation_id
    return chain


def next_handoffs(rotation: Rotation, at: datetime, count: int) -> Sequence[Shift]:
    """The scheduled shifts from the one covering ``at`` onwards (for the schedule view)."""
    shifts: list[Shift] = []
    moment = at
    for _ in range(count):
        shift = scheduled_shift(rotation, moment)
        if shift is None:
            break
        shifts.append(shift)
        moment = shift.ends_at
    return shifts
