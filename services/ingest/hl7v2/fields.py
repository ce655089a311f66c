"""Typed, lazy reading of HL7 v2 fields: a segment is split into fields when first read, and a
field into repetitions, components and subcomponents only when that field is read.

Most of a message (notes, next of kin, empty positions) is never looked at, so it is never
split. The result is checked against the ``hl7`` library's parser (the reference) field by field
in tests/ingest/test_hl7v2_reader.py. Positions are 1-based as in the standard (``PID-3``,
component 5 of a CX); for MSH, ``MSH-n`` is position n (MSH-1 is the field separator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from services.ingest.domain import Problem, Refused

Component = list[str]  # subcomponents
Repetition = list[Component]  # components

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,4})?)?([+-]\d{4})?$")


@dataclass(frozen=True)
class Separators:
    """MSH-1 and MSH-2, with the defaults the standard (and the ``hl7`` library) assume."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @classmethod
    def of(cls, msh: str) -> Separators:
        sep = msh[3]
        end = msh.find(sep, 4)
        chars = msh[4 : end if end > 0 else len(msh)]
        defaults = cls()
        return cls(
            field=sep,
            component=chars[0] if len(chars) > 0 else defaults.component,
            repetition=chars[1] if len(chars) > 1 else defaults.repetition,
            escape=chars[2] if len(chars) > 2 else defaults.escape,
            subcomponent=chars[3] if len(chars) > 3 else defaults.subcomponent,
        )


@dataclass
class Seg:
    name: str
    ordinal: int  # 1-based among the message's segments of this name (for ERR-2)
    text: str
    seps: Separators = field(default_factory=Separators)
    _fields: list[str] | None = None
    _reps: dict[int, list[Repetition]] = field(default_factory=dict)

    def loc(self, position: int) -> str:
        return (
            f"{self.name}-{position}"
            if self.ordinal == 1
            else f"{self.name}[{self.ordinal}]-{position}"
        )

    def raw(self, position: int) -> str:
        """The field as written (separators included), e.g. to echo MSH fields in an ACK."""
        if self._fields is None:
            self._fields = self.text.split(self.seps.field)
            if self.name == "MSH":  # MSH-1 is the separator itself, so MSH-n is at n - 1
                self._fields.insert(1, self.seps.field)
        return self._fields[position] if position < len(self._fields) else ""

    def reps(self, position: int) -> list[Repetition]:
        """The field's non-empty repetitions, each as components of subcomponents."""
        found = self._reps.get(position)
        if found is None:
            text = self.raw(position)
            s = self.seps
            if not text.strip(" "):
                found = []
            elif (self.name == "MSH" and position in (1, 2)) or not (
                s.component in text or s.repetition in text or s.subcomponent in text
            ):
                found = [[[text]]]  # the common case: one plain value
            else:
                found = [
                    [c.split(s.subcomponent) for c in rep.split(s.component)]
                    for rep in text.split(s.repetition)
                    if rep.strip(f"{s.component}{s.subcomponent} ")
                ]
            self._reps[position] = found
        return found

    def first(self, position: int) -> Repetition:
        reps = self.reps(position)
        return reps[0] if reps else []

    def part(self, rep: Repetition, component: int, sub: int = 1) -> str:
        if component > len(rep) or sub > len(rep[component - 1]):
            return ""
        value = rep[component - 1][sub - 1].strip()
        return unescape(value, self.seps) if self.seps.escape in value else value

    def value(self, position: int, component: int = 1, sub: int = 1) -> str:
        reps = self._reps.get(position)
        if reps is None:
            reps = self.reps(position)
        return self.part(reps[0], component, sub) if reps else ""


def unescape(value: str, seps: Separators) -> str:
    """HL7 escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\) as the message's own characters;
    formatting and hexadecimal sequences (\\H\\, \\X..\\ and the like) are dropped."""
    table = {"F": seps.field, "S": seps.component, "T": seps.subcomponent}
    table |= {"R": seps.repetition, "E": seps.escape}
    parts = value.split(seps.escape)
    out = [parts[0]]
    for index in range(1, len(parts), 2):
        code = parts[index]
        out.append(table.get(code, "" if code[:1] in {"H", "N", "X", "Z", "."} else code))
        if index + 1 < len(parts):
            out.append(parts[index + 1])
    return "".join(out)


def timestamp(text: str, zone: ZoneInfo, loc: str) -> tuple[datetime, bool] | None:
    """An HL7 DTM as an aware datetime and whether it has a time of day; None when empty.

    A value without an offset is read in ``zone`` (the clinic's zone).
    """
    value = text.strip()
    if not value:
        return None
    match = _TS.match(value)
    if match is None:
        raise Refused([Problem(loc, "not an HL7 date-time (YYYYMMDD[HHMM[SS]][+ZZZZ])", "102")])
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        naive = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
        )
    except ValueError:
        raise Refused([Problem(loc, "not a calendar date-time", "102")]) from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        if delta >= timedelta(hours=24):
            raise Refused([Problem(loc, "time zone offset out of range", "102")])
        aware = naive.replace(tzinfo=timezone(sign * delta))
    else:
        aware = naive.replace(tzinfo=zone)
    try:
        return aware.astimezone(UTC), hour is not None
    except (ValueError, OverflowError):
        raise Refused([Problem(loc, "not a calendar date-time", "102")]) from None


def coded(seg: Seg, rep: Repetition) -> list[tuple[str, str, str]]:
    """(code, text, coding system) of a CWE/CE: the identifier and the alternate identifier."""
    out = []
    for first in (1, 4):
        code, text, system = (seg.part(rep, first + i) for i in range(3))
        if code or text:
            out.append((code, text, system))
    return out
