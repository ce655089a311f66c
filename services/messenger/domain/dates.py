"""When a patient asks to be reminded: "in 2 weeks", "next month", "after March", "en enero".

Works on folded text (lower case, no accents). Returns the first day the patient could mean,
or None when the reply names no time at all.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "un": 1,
    "una": 1,
    "uno": 1,
    "two": 2,
    "couple": 2,
    "dos": 2,
    "par": 2,
    "three": 3,
    "few": 3,
    "tres": 3,
    "unas": 3,
    "unos": 3,
    "pocas": 3,
    "pocos": 3,
    "four": 4,
    "cuatro": 4,
    "five": 5,
    "cinco": 5,
    "six": 6,
    "seis": 6,
}
_UNITS = {
    "day": 1,
    "days": 1,
    "dia": 1,
    "dias": 1,
    "week": 7,
    "weeks": 7,
    "semana": 7,
    "semanas": 7,
    "wk": 7,
    "wks": 7,
    "month": 30,
    "months": 30,
    "mes": 30,
    "meses": 30,
    "mo": 30,
    "mos": 30,
}
_MONTHS = {
    **{m.lower(): i for i, m in enumerate(calendar.month_name) if m},
    **{m.lower(): i for i, m in enumerate(calendar.month_abbr) if m},
    "enero": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
}
_SEASONS = {
    "spring": (3, 20),
    "primavera": (3, 20),
    "summer": (6, 21),
    "verano": (6, 21),
    "fall": (9, 22),
    "autumn": (9, 22),
    "otono": (9, 22),
    "winter": (12, 21),
    "invierno": (12, 21),
}
_HOLIDAYS = {
    r"holidays|fiestas|navidad|christmas|xmas": (1, 5),
    r"new year|ano nuevo": (1, 5),
    r"thanksgiving|accion de gracias": (12, 1),
    r"labor day": (9, 10),
    r"summer break|vacaciones de verano": (8, 25),
}

_N = r"(\d{1,2}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_U = r"(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")"
_IN_N = re.compile(
    rf"\b(?:in|within|after|en|dentro de|despues de|like)\s+(?:a\s+|an\s+|the\s+)?"
    rf"(?:next\s+)?{_N}?\s*(?:of\s+)?{_U}\b"
)
_BARE_N = re.compile(rf"\b{_N}\s+{_U}\b")
_NEXT = re.compile(
    r"\b(next|this coming|proxim[oa]|(?:el|la) que viene)\s+(week|month|year|semana|mes|ano)\b"
    r"|\b(week|month|semana|mes|ano)\s+(?:que viene|proxim[oa])\b"
)
_MONTH = re.compile(
    r"\b(after|despues de|in|en|around|until|hasta|for|para)?\s*(?:the\s+|el\s+|mes\s+de\s+)?"
    r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b"
)
_DAY_OF_MONTH = re.compile(r"\b(?:the|on the|el|el dia)\s+(\d{1,2})(?:st|nd|rd|th)?\b")
_TOMORROW = re.compile(r"\b(tomorrow|tmrw|manana)\b")
_LATER_THIS_WEEK = re.compile(r"\b(?:end of the week|this weekend|fin de semana)\b")


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _next_occurrence(today: date, month: int, day: int) -> date:
    candidate = date(today.year, month, day)
    return candidate if candidate > today else date(today.year + 1, month, day)


def snooze_date(folded: str, today: date) -> date | None:
    """The day a "later" reply asks for, or None when it names no time."""
    for pattern, (month, day) in _HOLIDAYS.items():
        after = r"\b(?:after|until|till|past|despues de|hasta)\s+(?:the\s+|las?\s+|el\s+)?"
        if re.search(rf"{after}(?:{pattern})\b", folded):
            return _next_occurrence(today, month, day)
    if m := _IN_N.search(folded) or _BARE_N.search(folded):
        count = m.group(1)
        n = 1 if count is None else int(count) if count.isdigit() else _NUMBERS.get(count, 1)
        unit = _UNITS[m.group(2)]
        if unit == 30:
            return _add_months(today, n)
        return today + timedelta(days=n * unit)
    if m := _NEXT.search(folded):
        word = m.group(2) or m.group(3)
        if word in ("week", "semana"):
            return today + timedelta(days=7)
        if word in ("month", "mes"):
            return _add_months(today, 1)
        return _add_months(today, 12)
    for name, (month, day) in _SEASONS.items():
        if re.search(rf"\b{name}\b", folded):
            return _next_occurrence(today, month, day)
    for m in _MONTH.finditer(folded):
        name = m.group(2)
        # "may" and "mar" are also ordinary words; take them only after a preposition.
        if name in ("may", "mar", "jan", "jun", "sep", "oct", "dec") and not m.group(1):
            continue
        month = _MONTHS[name]
        start = _next_occurrence(today, month, 1) if today.month != month else today
        if m.group(1) in ("after", "despues de"):
            return _add_months(start.replace(day=1), 1)
        return start
    if m := _DAY_OF_MONTH.search(folded):
        day = int(m.group(1))
        if 1 <= day <= 31:
            candidate = today.replace(day=min(day, calendar.monthrange(today.year, today.month)[1]))
            return candidate if candidate > today else _add_months(candidate, 1)
    if _TOMORROW.search(folded):
        return today + timedelta(days=1)
    if _LATER_THIS_WEEK.search(folded):
        return today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return None
