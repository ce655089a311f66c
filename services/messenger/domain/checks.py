"""Send-time checks: who may be messaged now, on which channel.

They run on what is true now, whatever the sequencer believed when it scheduled the step: the
command's expiry, a usable contact, deceased or inactive, a number reported as wrong, opt-out,
marketing consent on the channel, an open escalation, an approved template, quiet hours in the
patient's own time zone and the frequency caps. The first failing check is the reason reported.

Quiet hours and caps are the clinic's outreach policy, carried by the command and applied with
the same functions the sequencer scheduled it with (``shared.outreach_policy``): the messenger
has no hours or caps of its own. It narrows them with what it knows better (the zone and the
address state on the patient's contact card), never widens them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events.common import Channel, Purpose
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep
from shared.outreach_policy import (
    DEFAULT_POLICY,
    WEEK,
    ConsentRefusal,
    Hold,
    OutreachPolicy,
    consent_refusal,
    send_refusal,
)

__all__ = ["WEEK", "Blocked", "ContactCard", "SendContext", "SendWindow", "check_send"]

# Reasons that belong to one channel: the command's fallback channel may still work.
CHANNEL_REASONS = frozenset(
    {BlockReason.no_contact, BlockReason.opted_out, BlockReason.wrong_number}
)
_HOLDS = {Hold.quiet_hours: BlockReason.quiet_hours, Hold.frequency_cap: BlockReason.frequency_cap}
_CONSENT = {
    ConsentRefusal.opted_out: BlockReason.opted_out,
    ConsentRefusal.no_consent: BlockReason.no_consent,
}


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
    marketing_sms: bool = False  # marketing consent is given (or not) per channel
    marketing_email: bool = False
    wrong_number_phone: str | None = None  # a number the patient's household said is not theirs
    home_state: str | None = None

    def address(self, channel: Channel) -> str | None:
        return self.phone if channel is Channel.sms else self.email

    def opted_out(self, channel: Channel) -> bool:
        return self.opted_out_sms if channel is Channel.sms else self.opted_out_email

    def marketing(self, channel: Channel) -> bool:
        return self.marketing_sms if channel is Channel.sms else self.marketing_email

    @property
    def lang(self) -> str:
        """The template language: ``es`` for any Spanish tag, else English."""
        return "es" if self.language.split("-")[0].lower() == "es" else "en"


@dataclass(frozen=True)
class Blocked:
    reason: BlockReason
    retry_after: datetime | None = None


@dataclass(frozen=True)
class SendWindow:
    """What a queued step keeps of its command for the check at the moment of sending."""

    policy: OutreachPolicy = DEFAULT_POLICY
    time_zone: str | None = None  # the zone the sequencer planned in
    home_state: str | None = None

    @classmethod
    def of(cls, cmd: SendStep) -> SendWindow:
        return cls(cmd.policy, cmd.time_zone, cmd.home_state)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.model_dump(mode="json"),
            "time_zone": self.time_zone,
            "home_state": self.home_state,
        }

    @classmethod
    def from_json(cls, raw: Any) -> SendWindow:
        if isinstance(raw, str):
            raw = json.loads(raw)
        if not isinstance(raw, dict):
            return cls()  # queued before windows were kept: the default policy
        return cls(
            OutreachPolicy.model_validate(raw.get("policy") or {}),
            raw.get("time_zone"),
            raw.get("home_state"),
        )

    def zones(self, card: ContactCard | None) -> list[ZoneInfo]:
        """Every zone the patient may be in, each of which must allow the send: the one the
        sequencer planned in and the card's (fresher, last); the clinic's when neither is
        known."""
        names = [self.time_zone] if self.time_zone else []
        if card is not None and card.time_zone and card.time_zone not in names:
            names.append(card.time_zone)
        return [ZoneInfo(n) for n in names or [self.policy.zone]]

    def states(self, card: ContactCard | None) -> list[str | None]:
        return [self.home_state, card.home_state if card else None]

    def hold(
        self, card: ContactCard | None, now: datetime, sends: Sequence[datetime] = ()
    ) -> Blocked | None:
        refused = send_refusal(
            self.policy, now, zones=self.zones(card), states=self.states(card), sends=sends
        )
        return Blocked(_HOLDS[refused.hold], refused.retry_after) if refused else None


@dataclass(frozen=True)
class SendContext:
    """Facts the checks need besides the card; loaded per batch by the shell."""

    escalation_open: bool = False
    template_available: bool = True
    recent_sends: Sequence[datetime] = field(
        default_factory=tuple
    )  # outreach sends to this patient
    sequence_cancelled: bool = False


def channel_check(
    card: ContactCard | None, channel: Channel, purpose: Purpose = Purpose.care
) -> BlockReason | None:
    if card is None or card.address(channel) is None:
        return BlockReason.no_contact
    if channel is Channel.sms and card.wrong_number_phone and card.phone == card.wrong_number_phone:
        return BlockReason.wrong_number
    refused = consent_refusal(
        purpose,
        channel,
        opted_out=[c for c in Channel if card.opted_out(c)],
        marketing_consent=[c for c in Channel if card.marketing(c)],
    )
    return _CONSENT[refused] if refused else None


def _person(card: ContactCard | None) -> Blocked | None:
    if card is None:
        return Blocked(BlockReason.no_contact)
    if card.deceased:
        return Blocked(BlockReason.deceased)
    if not card.active:
        return Blocked(BlockReason.patient_inactive)
    return None


def check_send(
    card: ContactCard | None,
    cmd: SendStep,
    now: datetime,
    ctx: SendContext | None = None,
    *,
    channel: Channel | None = None,
) -> Blocked | None:
    """None when the step may go now on ``channel`` (default: the command's); else why not."""
    ctx = ctx or SendContext()
    channel = channel or cmd.channel
    if now >= cmd.expires_at:
        return Blocked(BlockReason.expired)
    gone = _person(card)
    if gone is not None:
        return gone
    reason = channel_check(card, channel, cmd.purpose)
    if reason is not None:
        return Blocked(reason)
    if ctx.escalation_open:
        return Blocked(BlockReason.escalation_open)
    if not ctx.template_available:
        return Blocked(BlockReason.template_not_approved)
    return SendWindow.of(cmd).hold(card, now, ctx.recent_sends)


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
        and channel_check(card, cmd.fallback_channel, cmd.purpose) is None
    ):
        fallback = cmd.fallback_channel
        return fallback, True, check_send(card, cmd, now, ctx_for(fallback), channel=fallback)
    return cmd.channel, False, blocked


def recheck(
    card: ContactCard | None,
    *,
    channel: Channel,
    purpose: Purpose,
    expires_at: datetime | None,
    now: datetime,
    window: SendWindow,
    escalation_open: bool,
) -> Blocked | None:
    """The checks again at the moment of sending (caps were counted when the step was claimed):
    anything that changed since the claim (an opt-out, a death, an escalation, the hour) wins."""
    if expires_at is not None and now >= expires_at:
        return Blocked(BlockReason.expired)
    gone = _person(card)
    if gone is not None:
        return gone
    reason = channel_check(card, channel, purpose)
    if reason is not None:
        return Blocked(reason)
    if escalation_open:
        return Blocked(BlockReason.escalation_open)
    return window.hold(card, now)
