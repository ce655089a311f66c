"""The fault run's checker can fail: one violation of each kind is reported, by its invariant,
and a clean state reports none."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta

from revisit.chaos.checker import (
    ChaosState,
    ConsentChange,
    DeadLetter,
    EhrEvent,
    Policy,
    RedFlag,
    Send,
    check,
    report,
)

T = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 10:00 in Chicago
CLINIC = "clinic-c"
ALICE, BOB = f"{CLINIC}:p-alice", f"{CLINIC}:p-bob"


def step(pk: str, seq: str, n: int, at: datetime, message: str | None = None) -> Send:
    return Send(
        message_id=message or f"m-{seq}-{n}-{at.isoformat()}",
        patient_key=pk,
        kind="step",
        channel="sms",
        sequence_id=seq,
        step=n,
        reply_kind=None,
        sent_at=at,
        decided_at=at,
    )


def clean() -> ChaosState:
    return ChaosState(
        accepted=[EhrEvent("e1", "PatientUpserted"), EhrEvent("e2", "AppointmentBooked")],
        consumers={
            "segmenter.journeys": None,
            "messenger.contacts": frozenset({"PatientUpserted"}),
        },
        consumed={
            ("segmenter.journeys", "e1"),
            ("segmenter.journeys", "e2"),
            ("messenger.contacts", "e1"),
        },
        sends=[step(ALICE, "s1", 1, T), step(ALICE, "s1", 2, T + timedelta(days=2))],
        consent=[
            ConsentChange(BOB, "sms", "opted_out", True, T),
            ConsentChange(BOB, "sms", "opted_out", False, T),  # not applied: ignored
        ],
        policies={CLINIC: Policy("America/Chicago", time(9), time(21), 1, 3)},
        red_flags=[RedFlag("in-1", BOB, "esc-1")],
        cases={"esc-1"},
        paged={"esc-1"},
        dead_letters=[DeadLetter("ehr.events.v1.dlq:0:0", b"{garbage")],
        deliberate={b"{garbage"},
        always_allowed_replies=frozenset({"stop_confirmation"}),
        stuck={"outbox rows": 0},
    )


def test_a_clean_run_reports_no_violation_and_counts_what_it_checked() -> None:
    results = check(clean())
    assert [r.violations for r in results] == [[] for _ in results]
    by_name = {r.name: r.checked for r in results}
    assert by_name["ehr_reached_every_consumer_once"] == 3
    assert by_name["no_step_sent_twice"] == 2
    lines = report(results, {"kill -9 ingest": 2})
    assert "chaos_no_step_sent_twice: 0 violations (2 checked)" in lines
    assert lines[-1] == "chaos_FAULTS: kill -9 ingest x2"


def test_one_violation_of_each_kind_is_reported_by_its_invariant() -> None:
    state = clean()
    late = T + timedelta(hours=1)
    state.accepted.append(EhrEvent("e3", "AppointmentBooked"))  # never consumed
    state.accepted.append(EhrEvent("e4", None))  # never published
    state.sends += [
        step(ALICE, "s1", 1, T + timedelta(days=3), "m-again"),  # the same step twice
        step(BOB, "s9", 1, late),  # after Bob's STOP
        step(ALICE, "s2", 1, datetime(2026, 12, 10, 4, 0, tzinfo=UTC)),  # 22:00 in Chicago
        step(ALICE, "s3", 1, T + timedelta(hours=2)),  # a second in 24 h
        dataclasses.replace(
            step(BOB, "r1", 1, late), kind="reply", reply_kind="stop_confirmation"
        ),  # allowed after a STOP
    ]
    state.red_flags.append(RedFlag("in-2", BOB, "esc-2"))  # no case at all
    state.red_flags.append(RedFlag("in-3", BOB, "esc-3"))  # a case, never paged
    state.cases.add("esc-3")
    state.dead_letters.append(DeadLetter("outreach.commands.v1.dlq:1:4", b'{"type":"SendStep"}'))
    state.stuck["messages in doubt"] = 1
    state.deliberate.add(b"\x00lost")  # sent on purpose, never dead-lettered

    found = {r.name: r.violations for r in check(state)}

    assert all(found.values()), [name for name, v in found.items() if not v]  # each one fired
    assert found["ehr_reached_every_consumer_once"] == [
        "e3 (AppointmentBooked) never reached segmenter.journeys",
        "e4: accepted but never published",
    ]
    assert found["no_step_sent_twice"] == [f"{ALICE} s1 step 1: sent 2 times"]
    [after] = found["no_send_after_opt_out"]
    assert after.startswith(BOB) and "sent after an opt-out" in after
    [hours] = found["no_send_outside_allowed_hours"]
    assert "22:00 local" in hours
    [caps] = found["caps_held"]
    assert caps.startswith(ALICE) and "2 in 24 h" in caps
    assert found["every_red_flag_paged"] == [
        f"{BOB} in-2: red flag with no case",
        f"{BOB} in-3: red flag case never paged",
    ]
    assert found["no_unexpected_dead_letter"] == [
        "outreach.commands.v1.dlq:1:4: dead-lettered but not a deliberately bad input"
    ]
    assert found["every_bad_input_dead_lettered"] == [
        "a deliberately bad input of 5 bytes was never dead-lettered"
    ]
    assert found["nothing_left_in_flight"] == ["1 messages in doubt"]


def test_an_opt_in_after_the_opt_out_allows_sending_again() -> None:
    state = clean()
    state.consent.append(ConsentChange(BOB, None, "opted_in", True, T + timedelta(minutes=5)))
    state.sends.append(step(BOB, "s9", 1, T + timedelta(minutes=10)))
    found = {r.name: r.violations for r in check(state)}
    assert found["no_send_after_opt_out"] == []
