"""Send-time checks: who may be messaged now, on which channel.

They run on what is true now, whatever the sequencer believed when it scheduled the step: the
command's expiry, a usable contact, deceased or inactive, a number reported as wrong, opt-out,
marketing consent, an open escalation, an approved template, quiet hours in the patient's own
time zone and the frequency caps. The first failing check is the reason reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events.common import Channel, Purpose
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep

QUIET_UNTIL = time(8, 0)
QUIET_FROM = time(21, 0)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)

# Reasons that belong to one channel: the command's fallback channel may still work.
CHANNEL_REASONS = frozenset(
    {BlockReason.no_contact, BlockReason.opted_out, BlockReason.wrong_number}
)


@dataclass(frozen=True)
class ContactCard:
    """What the messenger knows about reaching one patient (from the EHR and the ledger)."""

    patient_key: str
    given_name: str | None
    phone: str | None
    email: str | None
    language: str
    time_zone: str | None
    deceased: bool = False
    active: bool = True
    opted_out_sms: bool = False
    opted_out_email: bool = False
    marketing_consent: bool = False
    wrong_number_phone: str | None = None  # a number the patient's household said is not theirs

    def address(self, channel: Channel) -> str | None:
        return self.phone if channel is Channel.sms else self.email

    def opted_out(self, channel: Channel) -> bool:
        return self.opted_out_sms if channel is Channel.sms else self.opted_out_email

    @property
    def lang(self) -> str:
        """The template language: ``es`` for any Spanish tag, else English."""
        return "es" if self.language.split("-")[0].lower() == "es" else "en"


@dataclass(frozen=True)
class Caps:
    per_day: int = 1
    per_week: int = 3


@dataclass(frozen=True)
class Blocked:
    reason: BlockReason
    retry_after: datetime | None = None


@dataclass(frozen=True)
class SendContext:
    """Facts the checks need besides the card; loaded per batch by the shell."""

    default_zone: str
    escalation_open: bool = False
    template_available: bool = True
    recent_sends: Sequence[datetime] = field(
        default_factory=tuple
    )  # outreach sends to this patient
    caps: Caps = field(default_factory=Caps)
    sequence_cancelled: bool = False


def channel_check(card: ContactCard | None, channel: Channel) -> BlockReason | None:
    if card is None or card.address(channel) is None:
        return BlockReason.no_contact
    if channel is Channel.sms and card.wrong_number_phone and card.phone == card.wrong_number_phone:
        return BlockReason.wrong_number
    if card.opted_out(channel):
        return BlockReason.opted_out
    return None


def check_send(
    card: ContactCard | None,
    cmd: SendStep,
    now: datetime,
    ctx: SendContext | str,
    *,
    channel: Channel | None = None,
) -> Blocked | None:
    """None when the step may go now on ``channel`` (default: the command's); else why not."""
    if isinstance(ctx, str):
        ctx = SendContext(default_zone=ctx)
    channel = channel or cmd.channel
    if now >= cmd.expires_at:
        return Blocked(BlockReason.expired)
    if card is None:
        return Blocked(BlockReason.no_contact)
    if card.deceased:
        return Blocked(BlockReason.deceased)
    if not card.active:
        return Blocked(BlockReason.patient_inactive)
    reason = channel_check(card, channel)
    if reason is not None:
        return Blocked(reason)
    if cmd.purpose is Purpose.marketing and not card.marketing_consent:
        return Blocked(BlockReason.no_consent)
    if ctx.escalation_open:
        return Blocked(BlockReason.escalation_open)
    if not ctx.template_available:
        return Blocked(BlockReason.template_not_approved)
    allowed_at = quiet_hours_end(now, ZoneInfo(card.time_zone or ctx.default_zone))
    if allowed_at is not None:
        return Blocked(BlockReason.quiet_hours, retry_after=allowed_at)
    capped_until = cap_reached(ctx.recent_sends, now, ctx.caps)
    if capped_until is not None:
        return Blocked(BlockReason.frequency_cap, retry_after=capped_until)
    return None


def choose_channel(
    card: ContactCard | None,
    cmd: SendStep,
    now: datetime,
    ctx_for: Callable[[Channel], SendContext],
) -> tuple[Channel, bool, Blocked | None]:
    """(channel, is_fallback, blocked): the command's channel, else its fallback channel when
    the first one fails for a reason that belongs to that channel only."""
    blocked = check_send(card, cmd, now, ctx_for(cmd.channel))
    if (
        blocked is not None
        and blocked.reason in CHANNEL_REASONS
        and cmd.fallback_channel is not None
        and channel_check(card, cmd.fallback_channel) is None
    ):
        fallback = cmd.fallback_channel
        return fallback, True, check_send(card, cmd, now, ctx_for(fallback), channel=fallback)
    return cmd.channel, False, blocked


def quiet_hours_end(now: datetime, zone: ZoneInfo) -> datetime | None:
    """When quiet hours end if ``now`` is inside them in ``zone``; None if it is not."""
    local = now.astimezone(zone)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return None
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=zone).astimezone(now.tzinfo)


def cap_reached(recent: Sequence[datetime], now: datetime, caps: Caps) -> datetime | None:
    """When the next outreach message may go if a cap is reached now; None if none is."""
    later: list[datetime] = []
    for window, cap in ((DAY, caps.per_day), (WEEK, caps.per_week)):
        inside = sorted(t for t in recent if now - window < t <= now)
        if cap == 0:
            continue
        if len(inside) >= cap:
            # The window frees a place when its oldest counted send leaves it.
            later.append(inside[len(inside) - cap] + window)
    return max(later) if later else None


def recheck(
    card: ContactCard | None,
    *,
    channel: Channel,
    purpose: Purpose,
    expires_at: datetime | None,
    now: datetime,
    default_zone: str,
    escalation_open: bool,
) -> Blocked | None:
    """The checks again at the moment of sending (caps were counted when the step was claimed):
    anything that changed since the claim (an opt-out, a death, an escalation, the hour) wins."""
    if expires_at is not None and now >= expires_at:
        return Blocked(BlockReason.expired)
    if card is None:
        return Blocked(BlockReason.no_contact)
    if card.deceased:
        return Blocked(BlockReason.deceased)
    if not card.active:
        return Blocked(BlockReason.patient_inactive)
    reason = channel_check(card, channel)
    if reason is not None:
        return Blocked(reason)
    if purpose is Purpose.marketing and not card.marketing_consent:
        return Blocked(BlockReason.no_consent)
    if escalation_open:
        return Blocked(BlockReason.escalation_open)
    allowed_at = quiet_hours_end(now, ZoneInfo(card.time_zone or default_zone))
    if allowed_at is not None:
        return Blocked(BlockReason.quiet_hours, retry_after=allowed_at)
    return None
