"""Send-time checks (pure), with a fixed clock and the policy the command carries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from services.messenger.domain.checks import (
    ContactCard,
    SendContext,
    SendWindow,
    check_send,
    choose_channel,
    recheck,
)
from shared.clock import FixedClock
from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep
from shared.outreach_policy import DEFAULT_POLICY

NOON_CHICAGO = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # 12:00 in America/Chicago
CARD = ContactCard(
    patient_key="c1:p1",
    given_name="Ana",
    phone="+15555550101",
    email="ana@example.org",
    language="en",
    time_zone="America/Chicago",
)
CTX = SendContext()


def command(**kw: object) -> SendStep:
    base: dict[str, object] = {
        "sequence_id": "s1",
        "step": 1,
        "workflow_key": "follow_up",
        "template_key": "follow_up.1",
        "channel": Channel.sms,
        "purpose": Purpose.care,
        "clinical_urgency": ClinicalUrgency.routine,
        "segment": Segment.follow_up_not_booked,
        "service_line": ServiceLine.skin_check,
        "not_before": NOON_CHICAGO - timedelta(hours=1),
        "expires_at": NOON_CHICAGO + timedelta(hours=6),
        "time_zone": "America/Chicago",
    }
    return SendStep.model_validate({**base, **kw})


def reason(card: ContactCard | None, cmd: SendStep | None = None, **ctx: object) -> object:
    blocked = check_send(card, cmd or command(), NOON_CHICAGO, replace(CTX, **ctx))  # type: ignore[arg-type]
    return blocked.reason if blocked else None


def test_a_consented_reachable_patient_at_noon_may_be_messaged() -> None:
    assert reason(CARD) is None


def test_every_refusal_has_its_reason() -> None:
    assert reason(None) is BlockReason.no_contact
    assert reason(replace(CARD, phone=None)) is BlockReason.no_contact
    assert reason(replace(CARD, deceased=True)) is BlockReason.deceased
    assert reason(replace(CARD, active=False)) is BlockReason.patient_inactive
    assert reason(replace(CARD, opted_out_sms=True)) is BlockReason.opted_out
    assert reason(replace(CARD, wrong_number_phone=CARD.phone)) is BlockReason.wrong_number
    assert reason(CARD, command(purpose=Purpose.marketing)) is BlockReason.no_consent
    assert reason(CARD, escalation_open=True) is BlockReason.escalation_open
    assert reason(CARD, template_available=False) is BlockReason.template_not_approved
    late = command(expires_at=NOON_CHICAGO, not_before=NOON_CHICAGO - timedelta(hours=2))
    assert reason(CARD, late) is BlockReason.expired


def test_marketing_consent_is_per_channel() -> None:
    by_email = replace(CARD, marketing_email=True)
    marketing = {"purpose": Purpose.marketing}
    assert reason(by_email, command(**marketing)) is BlockReason.no_consent
    assert reason(by_email, command(channel=Channel.email, **marketing)) is None
    assert reason(replace(CARD, marketing_sms=True), command(**marketing)) is None
    # Care needs no marketing consent on any channel.
    assert reason(CARD, command(channel=Channel.email)) is None


def test_quiet_hours_follow_the_patients_own_zone_and_say_when_to_retry() -> None:
    clock = FixedClock(datetime(2026, 3, 4, 2, 30, tzinfo=UTC))  # 20:30 Chicago, 21:30 New York
    cmd = command(expires_at=clock.now() + timedelta(days=1))
    assert check_send(CARD, cmd, clock.now(), CTX) is None
    planned_in_new_york = command(
        expires_at=clock.now() + timedelta(days=1), time_zone="America/New_York"
    )
    blocked = check_send(CARD, planned_in_new_york, clock.now(), CTX)
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours
    assert blocked.retry_after == datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # 08:00 in Chicago
    moved = replace(CARD, time_zone="America/New_York")  # the card knows better: it narrows
    blocked = check_send(moved, cmd, clock.now(), CTX)
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours


def test_quiet_hours_use_the_clinics_zone_when_the_patients_is_unknown() -> None:
    at = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)  # 21:30 in New York, the policy's zone
    card = replace(CARD, time_zone=None)
    blocked = check_send(card, command(expires_at=at + timedelta(days=1), time_zone=None), at)
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours


def test_the_clinics_hours_and_the_patients_state_narrow_the_window() -> None:
    # 08:30 in Chicago: inside the default hours, before Texas's 09:00.
    at = datetime(2026, 3, 4, 14, 30, tzinfo=UTC)
    cmd = command(expires_at=at + timedelta(days=1))
    assert check_send(CARD, cmd, at) is None
    texan = check_send(CARD, cmd.model_copy(update={"home_state": "TX"}), at)
    assert texan is not None and texan.reason is BlockReason.quiet_hours
    assert texan.retry_after == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    on_the_card = check_send(replace(CARD, home_state="TX"), cmd, at)
    assert on_the_card is not None and on_the_card.reason is BlockReason.quiet_hours
    late_opening = DEFAULT_POLICY.model_copy(update={"allowed_from": time(10)})
    opened = check_send(CARD, cmd.model_copy(update={"policy": late_opening}), at)
    assert opened is not None and opened.retry_after == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)


def test_quiet_hours_end_across_a_daylight_saving_change() -> None:
    # 2026-03-08 02:00 local: US clocks spring forward. 01:00 EST is 06:00 UTC.
    at = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    card = replace(CARD, time_zone="America/New_York")
    cmd = command(expires_at=at + timedelta(days=1), time_zone="America/New_York")
    blocked = check_send(card, cmd, at)
    assert blocked is not None and blocked.retry_after == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_frequency_caps_are_the_clinics_per_day_and_week() -> None:
    now = NOON_CHICAGO
    blocked = check_send(
        CARD, command(), now, replace(CTX, recent_sends=(now - timedelta(hours=1),))
    )
    assert blocked is not None and blocked.reason is BlockReason.frequency_cap
    assert blocked.retry_after == now + timedelta(hours=23)
    week = tuple(now - timedelta(days=d) for d in (2, 3, 4))
    blocked = check_send(CARD, command(), now, replace(CTX, recent_sends=week))
    assert blocked is not None and blocked.retry_after == now + timedelta(days=3)
    generous = DEFAULT_POLICY.model_copy(update={"per_week": 0})
    assert check_send(CARD, command(policy=generous), now, replace(CTX, recent_sends=week)) is None


def test_the_fallback_channel_is_used_when_the_first_is_opted_out() -> None:
    card = replace(CARD, opted_out_sms=True)
    channel, fallback, blocked = choose_channel(
        card, command(fallback_channel=Channel.email), NOON_CHICAGO, lambda _c: CTX
    )
    assert (channel, fallback, blocked) == (Channel.email, True, None)
    channel, fallback, blocked = choose_channel(card, command(), NOON_CHICAGO, lambda _c: CTX)
    assert blocked is not None and blocked.reason is BlockReason.opted_out and not fallback


def test_recheck_at_dispatch_sees_an_opt_out_made_after_the_claim() -> None:
    args = {
        "channel": Channel.sms,
        "purpose": Purpose.care,
        "expires_at": None,
        "now": NOON_CHICAGO,
        "window": SendWindow.of(command()),
        "escalation_open": False,
    }
    assert recheck(CARD, **args) is None  # type: ignore[arg-type]
    blocked = recheck(replace(CARD, opted_out_sms=True), **args)  # type: ignore[arg-type]
    assert blocked is not None and blocked.reason is BlockReason.opted_out


def test_recheck_at_dispatch_uses_the_window_the_step_was_queued_with() -> None:
    window = SendWindow.from_json(SendWindow.of(command()).to_json())
    assert window == SendWindow.of(command())
    night = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)  # 22:00 in Chicago
    blocked = recheck(
        CARD,
        channel=Channel.sms,
        purpose=Purpose.care,
        expires_at=None,
        now=night,
        window=window,
        escalation_open=False,
    )
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours
    assert SendWindow.from_json(None) == SendWindow()  # queued before windows were kept
