"""Intervals as EHRs write them ("in 6 months", UCUM ``mo``, FHIR Timing units) -> days."""

from __future__ import annotations

import re

# Days per unit: FHIR/UCUM codes and the words plans are written with. A month is 30 days and
# a year 365: recalls are planned to the week, not the day.
_UNIT_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "w": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "y": 365,
    "yr": 365,
    "year": 365,
    "years": 365,
    "annum": 365,
}
_SPOKEN = re.compile(
    r"^\s*(?:in|every|after|return in|follow[- ]?up in)?\s*(\d{1,3})\s*"
    r"(d|days?|wk|w|weeks?|mo|months?|y|yr|years?)\s*\.?\s*$",
    re.IGNORECASE,
)
_WORDS = {"annually": 365, "yearly": 365, "monthly": 30, "weekly": 7, "quarterly": 91}


def unit_days(unit: str | None) -> int | None:
    return _UNIT_DAYS.get((unit or "").strip().lower())


def days_of(value: float | None, unit: str | None) -> int | None:
    """A quantity of a calendar unit in whole days (at least 1); None if unknown or absurd."""
    per = unit_days(unit)
    if value is None or per is None or value <= 0:
        return None
    days = round(float(value) * per)
    return days if 1 <= days <= 3650 else None


def spoken_interval(text: str | None) -> tuple[int, bool] | None:
    """``"in 6 months"`` -> (180, False); ``"every 6 months"``/``"annually"`` -> (days, True)."""
    value = (text or "").strip()
    if not value:
        return None
    word = _WORDS.get(value.lower())
    if word is not None:
        return word, True
    match = _SPOKEN.match(value)
    if match is None:
        return None
    days = days_of(int(match.group(1)), match.group(2))
    if days is None:
        return None
    return days, value.lower().lstrip().startswith("every")
