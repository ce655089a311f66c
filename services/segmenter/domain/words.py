"""Plain words and dates for reasons: the practice's service names, intervals as a practice
says them ("6 months", "4-week"), and date windows. Never a diagnosis, never free text."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.events.common import ServiceLine

_WORDS = {
    ServiceLine.skin_check: "skin check",
    ServiceLine.biopsy_follow_up: "biopsy follow-up",
    ServiceLine.skin_cancer_surgery: "skin surgery",
    ServiceLine.mohs: "Mohs surgery",
    ServiceLine.acne: "acne care",
    ServiceLine.isotretinoin: "isotretinoin treatment",
    ServiceLine.rosacea: "rosacea care",
    ServiceLine.psoriasis_eczema: "psoriasis and eczema care",
    ServiceLine.hair_loss: "hair loss care",
    ServiceLine.phototherapy: "phototherapy",
    ServiceLine.patch_testing: "patch testing",
    ServiceLine.general_dermatology: "general dermatology",
    ServiceLine.cosmetic_consult: "cosmetic consultation",
    ServiceLine.neurotoxin: "neurotoxin",
    ServiceLine.filler: "filler",
    ServiceLine.laser: "laser",
    ServiceLine.chemical_peel: "chemical peel",
    ServiceLine.microneedling: "microneedling",
    ServiceLine.unspecified: "appointment",
}


def words(line: ServiceLine) -> str:
    """The service in plain words (the practice's service name, never a diagnosis)."""
    return _WORDS[line]


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def span(days: int) -> str:
    """An interval in the words a practice uses: weeks, months or days."""
    if days >= 56:
        months = round(days / 30.4375)
        if abs(months * 30.4375 - days) <= 4:
            return "1 month" if months == 1 else f"{months} months"
    if days % 7 == 0 and days >= 14:
        return f"{days // 7} weeks"
    return "1 day" if days == 1 else f"{days} days"


def span_adjective(days: int) -> str:
    """The same interval before a noun: "3-month", "4-week", "20-day"."""
    amount, unit = span(days).split(" ")
    return f"{amount}-{unit.rstrip('s')}"


def day_start(day: date) -> datetime:
    """Date windows open at midnight UTC; the sequencer picks the patient's allowed hours."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def window(opens_on: date, closes_on: date) -> dict[str, Any]:
    """Keyword arguments of a date window: surfaces at its first day, expires after its last."""
    closes_on = max(closes_on, opens_on)
    return {
        "surface_at": day_start(opens_on),
        "expires_at": day_start(closes_on + timedelta(days=1)),
        "opens_on": opens_on,
        "closes_on": closes_on,
    }
