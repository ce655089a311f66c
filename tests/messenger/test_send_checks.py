"""Send-time checks (pure), with a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.messenger.domain.checks import (
    Caps,
    ContactCard,
    SendContext,
    cap_reached,
    check_send,
    choose_channel,
    quiet_hours_end,
    recheck,
)
from shared.clock import FixedClock
from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep

NOON_CHICAGO = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # 12:00 in America/Chicago
CARD = ContactCard(
    patient_key="c1:p1",
    given_name="Ana",
    phone="+15555550101",
    email="ana@example.org",
    language="en",
    time_zone="America/Chicago",
    marketing_consent=False,
)
CTX = SendContext(default_zone="America/New_York")


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
    assert reason(replace(CARD, marketing_consent=True), command(purpose=Purpose.marketing)) is None
    assert reason(CARD, escalation_open=True) is BlockReason.escalation_open
    assert reason(CARD, template_available=False) is BlockReason.template_not_approved
    late = command(expires_at=NOON_CHICAGO, not_before=NOON_CHICAGO - timedelta(hours=2))
    assert reason(CARD, late) is BlockReason.expired


def test_quiet_hours_follow_the_patients_own_zone_and_say_when_to_retry() -> None:
    clock = FixedClock(datetime(2026, 3, 4, 2, 30, tzinfo=UTC))  # 20:30 Chicago, 21:30 New York
    chicago = check_send(
        CARD, command(expires_at=clock.now() + timedelta(days=1)), clock.now(), CTX
    )
    assert chicago is None
    new_york = replace(CARD, time_zone="America/New_York")
    blocked = check_send(
        new_york, command(expires_at=clock.now() + timedelta(days=1)), clock.now(), CTX
    )
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours
    assert blocked.retry_after == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_quiet_hours_use_the_default_zone_when_the_patients_is_unknown() -> None:
    at = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)
    assert quiet_hours_end(at, ZoneInfo("America/New_York")) is not None
    card = replace(CARD, time_zone=None)
    blocked = check_send(card, command(expires_at=at + timedelta(days=1)), at, CTX)
    assert blocked is not None and blocked.reason is BlockReason.quiet_hours


def test_quiet_hours_end_across_a_daylight_saving_change() -> None:
    # 2026-03-08 02:00 local: US clocks spring forward. 01:00 EST is 06:00 UTC.
    at = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    end = quiet_hours_end(at, ZoneInfo("America/New_York"))
    assert end == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT


def test_frequency_caps_per_day_and_week() -> None:
    now = NOON_CHICAGO
    assert cap_reached([now - timedelta(hours=3)], now, Caps(1, 3)) == now + timedelta(hours=21)
    week = [now - timedelta(days=d) for d in (2, 3, 4)]
    assert cap_reached(week, now, Caps(1, 3)) == now - timedelta(days=4) + timedelta(days=7)
    assert cap_reached(week, now, Caps(1, 0)) is None
    blocked = check_send(
        CARD, command(), now, replace(CTX, recent_sends=(now - timedelta(hours=1),))
    )
    assert blocked is not None and blocked.reason is BlockReason.frequency_cap
    assert blocked.retry_after == now + timedelta(hours=23)


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
        "default_zone": "UTC",
        "escalation_open": False,
    }
    assert recheck(CARD, **args) is None  # type: ignore[arg-type]
    blocked = recheck(replace(CARD, opted_out_sms=True), **args)  # type: ignore[arg-type]
    assert blocked is not None and blocked.reason is BlockReason.opted_out
