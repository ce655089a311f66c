"""Who is on call: hand-offs in the rotation's time zone, overrides, the escalation chain."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.escalation.domain import Member, Override, Rotation, Target, escalation_chain, on_call
from services.escalation.domain.rotations import next_handoffs

NY = "America/New_York"


def rotation(
    rid: str = "derm",
    members: tuple[str, ...] = ("dr-a", "dr-b", "dr-c"),
    *,
    shift_days: int = 1,
    fallback: str | None = None,
    overrides: tuple[Override, ...] = (),
) -> Rotation:
    return Rotation(
        rotation_id=rid,
        name=rid,
        time_zone=NY,
        handoff_time=time(8, 0),
        shift_days=shift_days,
        anchor_date=date(2026, 3, 2),  # Monday: dr-a's first shift starts 08:00 that day
        members=tuple(Member(m) for m in members),
        overrides=overrides,
        fallback_rotation_id=fallback,
    )


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """A New York wall time in March 2026 (EST until the 8th, EDT after), as UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(NY)).astimezone(UTC)


def test_the_pager_passes_at_the_handoff_time_in_the_rotations_time_zone() -> None:
    r = rotation()
    assert on_call(r, ny(2, 8)).responder_id == "dr-a"  # type: ignore[union-attr]
    assert on_call(r, ny(3, 7, 59)).responder_id == "dr-a"  # type: ignore[union-attr]
    assert on_call(r, ny(3, 8)).responder_id == "dr-b"  # type: ignore[union-attr]
    assert on_call(r, ny(5, 9)).responder_id == "dr-a"  # type: ignore[union-attr]


def test_a_weekly_rotation_keeps_one_person_for_seven_days() -> None:
    r = rotation(shift_days=7)
    shift = on_call(r, ny(6, 23))
    assert shift is not None
    assert shift.responder_id == "dr-a"
    assert (shift.starts_at, shift.ends_at) == (ny(2, 8), ny(9, 8))
    assert on_call(r, ny(9, 8)).responder_id == "dr-b"  # type: ignore[union-attr]


def test_the_handoff_stays_at_eight_local_across_the_daylight_saving_change() -> None:
    r = rotation()
    # 2026-03-08 is the spring-forward day in New York: 08:00 EDT is 12:00 UTC.
    before = on_call(r, datetime(2026, 3, 9, 11, 59, tzinfo=UTC))
    after = on_call(r, datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
    assert before is not None and after is not None
    assert before.responder_id != after.responder_id
    assert after.starts_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def test_an_override_wins_over_the_schedule_only_for_its_interval() -> None:
    cover = Override("o1", "dr-z", ny(3, 12), ny(3, 20))
    r = rotation(overrides=(cover,))
    assert on_call(r, ny(3, 11)).responder_id == "dr-b"  # type: ignore[union-attr]
    shift = on_call(r, ny(3, 13))
    assert shift is not None and (shift.responder_id, shift.source) == ("dr-z", "override")
    assert on_call(r, ny(3, 20)).responder_id == "dr-b"  # type: ignore[union-attr]


def test_the_latest_starting_override_wins_when_two_overlap() -> None:
    first = Override("o1", "dr-y", ny(3, 9), ny(3, 21))
    second = Override("o2", "dr-z", ny(3, 12), ny(3, 14))
    r = rotation(overrides=(second, first))
    assert on_call(r, ny(3, 13)).responder_id == "dr-z"  # type: ignore[union-attr]
    assert on_call(r, ny(3, 15)).responder_id == "dr-y"  # type: ignore[union-attr]


def test_a_rotation_without_members_has_nobody_on_call() -> None:
    assert on_call(rotation(members=()), ny(3, 12)) is None


def test_the_chain_is_the_on_call_person_the_next_person_then_the_fallback() -> None:
    rotations = {
        "derm": rotation("derm", fallback="manager"),
        "manager": rotation("manager", ("pm-1", "pm-2")),
    }
    chain = escalation_chain(rotations, "derm", ny(3, 12))  # dr-b's day, pm-2's day
    assert chain == [
        Target("derm", "dr-b"),
        Target("derm", "dr-c"),
        Target("manager", "pm-2"),
        Target("manager", "pm-1"),
    ]


def test_with_an_override_the_scheduled_person_is_next_in_the_chain() -> None:
    cover = Override("o1", "dr-z", ny(3, 9), ny(3, 21))
    chain = escalation_chain({"derm": rotation(overrides=(cover,))}, "derm", ny(3, 12))
    assert chain == [Target("derm", "dr-z"), Target("derm", "dr-b")]


def test_a_fallback_loop_and_repeated_people_are_cut() -> None:
    rotations = {
        "a": rotation("a", ("x", "y"), fallback="b"),
        "b": rotation("b", ("y", "z"), fallback="a"),
    }
    chain = escalation_chain(rotations, "a", ny(2, 12))
    assert [t.responder_id for t in chain] == ["x", "y", "z"]


def test_the_schedule_view_lists_the_next_handoffs() -> None:
    shifts = next_handoffs(rotation(), ny(2, 12), 3)
    assert [s.responder_id for s in shifts] == ["dr-a", "dr-b", "dr-c"]
    assert shifts[1].starts_at == shifts[0].ends_at


@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    size=st.integers(1, 6),
    shift_days=st.integers(1, 14),
)
def test_someone_is_always_on_call_and_their_shift_covers_the_instant(
    at: datetime, size: int, shift_days: int
) -> None:
    r = rotation(members=tuple(f"m{i}" for i in range(size)), shift_days=shift_days)
    shift = on_call(r, at)
    assert shift is not None
    assert shift.starts_at <= at < shift.ends_at
    assert shift.ends_at - shift.starts_at <= timedelta(days=shift_days, hours=1)
