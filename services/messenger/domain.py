"""Pure rules of the messenger: who may be messaged now, and with which approved words.

Send-time checks run on what is true now, whatever the sequencer believed when it scheduled
the step: opted out, deceased, consent for the purpose, a usable contact, quiet hours in the
patient's own time zone, and the command's expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events.common import Channel, Purpose, ServiceLine
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep

QUIET_UNTIL = time(8, 0)
QUIET_FROM = time(21, 0)

# Patient-facing names: what a patient would call the visit, never a condition.
SERVICE_NAMES: dict[ServiceLine, str] = {
    ServiceLine.skin_check: "skin check",
    ServiceLine.biopsy_follow_up: "follow-up visit",
    ServiceLine.skin_cancer_surgery: "procedure visit",
    ServiceLine.mohs: "procedure visit",
    ServiceLine.acne: "skin care visit",
    ServiceLine.isotretinoin: "monthly visit",
    ServiceLine.rosacea: "skin care visit",
    ServiceLine.psoriasis_eczema: "review visit",
    ServiceLine.hair_loss: "follow-up visit",
    ServiceLine.phototherapy: "light treatment session",
    ServiceLine.patch_testing: "patch test visit",
    ServiceLine.general_dermatology: "dermatology visit",
    ServiceLine.cosmetic_consult: "consultation",
    ServiceLine.neurotoxin: "cosmetic treatment",
    ServiceLine.filler: "cosmetic treatment",
    ServiceLine.laser: "laser session",
    ServiceLine.chemical_peel: "peel appointment",
    ServiceLine.microneedling: "microneedling session",
    ServiceLine.unspecified: "appointment",
}

# The approved words for the skeleton's one step. The template library, its linter and
# approval workflow replace this table; the rules already hold: no diagnosis, no urgency,
# no offer, an opt-out line on first contact, and never "reply CANCEL" (a carrier stop word).
TEMPLATES: dict[tuple[str, str], str] = {
    ("cancellation_recovery.1", "en"): (
        "Hi {first_name}, this is {practice_name}. Your {service_name} was cancelled. "
        "Reply BOOK to pick a new time, or call {practice_phone}. Reply STOP to opt out."
    ),
    ("cancellation_recovery.1", "es"): (
        "Hola {first_name}, le escribe {practice_name}. Su cita ({service_name}) fue cancelada. "
        "Responda BOOK para elegir otra hora o llame al {practice_phone}. "
        "Responda STOP para no recibir mensajes."
    ),
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
    marketing_consent: bool = False

    def address(self, channel: Channel) -> str | None:
        return self.phone if channel is Channel.sms else self.email

    def opted_out(self, channel: Channel) -> bool:
        return self.opted_out_sms if channel is Channel.sms else self.opted_out_email


@dataclass(frozen=True)
class Blocked:
    reason: BlockReason
    retry_after: datetime | None = None


def check_send(
    card: ContactCard | None, cmd: SendStep, now: datetime, default_zone: str
) -> Blocked | None:
    """None when the step may go now; otherwise why not (and when to try again, if ever)."""
    if now >= cmd.expires_at:
        return Blocked(BlockReason.expired)
    if card is None or card.address(cmd.channel) is None:
        return Blocked(BlockReason.no_contact)
    if card.deceased:
        return Blocked(BlockReason.deceased)
    if not card.active:
        return Blocked(BlockReason.patient_inactive)
    if card.opted_out(cmd.channel):
        return Blocked(BlockReason.opted_out)
    if cmd.purpose is Purpose.marketing and not card.marketing_consent:
        return Blocked(BlockReason.no_consent)
    zone = ZoneInfo(card.time_zone or default_zone)
    allowed_at = quiet_hours_end(now, zone)
    if allowed_at is not None:
        return Blocked(BlockReason.quiet_hours, retry_after=allowed_at)
    return None


def quiet_hours_end(now: datetime, zone: ZoneInfo) -> datetime | None:
    """When quiet hours end if ``now`` is inside them in ``zone``; None if it is not."""
    local = now.astimezone(zone)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return None
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=zone).astimezone(now.tzinfo)


@dataclass(frozen=True)
class Practice:
    name: str
    phone: str


def render(cmd: SendStep, card: ContactCard, practice: Practice) -> str:
    """The approved text for this step in the patient's language (English when missing)."""
    language = card.language.split("-")[0].lower()
    template = TEMPLATES.get((cmd.template_key, language)) or TEMPLATES[(cmd.template_key, "en")]
    return template.format(
        first_name=card.given_name or "there",
        practice_name=practice.name,
        practice_phone=practice.phone,
        service_name=SERVICE_NAMES.get(cmd.service_line, "appointment"),
    )
