"""HL7 v2 text -> messages (lazily read segments), headers, identity and fingerprint.

Segments may be separated by CR, LF or CRLF (files are often stored with LF). Batch envelopes
(FHS/BHS/BTS/FTS) are dropped. Only the segments mapping reads are kept: notes, observations,
diagnoses, next of kin and guarantors are never needed, so never split into fields.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from services.ingest.domain import Problem, Refused
from services.ingest.hl7v2.fields import Seg, Separators

_LINES = re.compile(r"\r\n|\n|\r")
_ENVELOPE = {"FHS", "BHS", "BTS", "FTS"}
READ = frozenset(
    {"MSH", "EVN", "PID", "PV1", "SCH", "TQ1", "RGS", "AIS", "AIG", "AIL", "AIP", "FT1", "PR1"}
)
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
MAX_SEGMENTS = 2000


def split_messages(text: str) -> list[str]:
    """Every message in ``text`` as CR-separated segments (empty lines and envelopes dropped)."""
    messages: list[list[str]] = []
    for line in _LINES.split(text):
        line = line.strip("\x0b\x1c \t")
        if not line or line[:3] in _ENVELOPE:
            continue
        if line.startswith("MSH"):
            messages.append([line])
        elif messages:
            messages[-1].append(line)
        else:
            raise Refused([Problem("MSH", "a message must start with an MSH segment", "100")])
    if not messages:
        raise Refused([Problem("MSH", "no message: a message starts with an MSH segment", "100")])
    return ["\r".join(segments) for segments in messages]


@dataclass(frozen=True)
class Header:
    """MSH, as the ACK and the de-duplication need it (raw component strings)."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str
    security: str
    message_type: str
    trigger: str
    control_id: str
    processing_id: str
    version: str
    encoding: str


@dataclass
class Hl7Message:
    text: str  # CR-separated, as received
    header: Header
    segments: tuple[Seg, ...]

    def all(self, name: str) -> list[Seg]:
        return self._by_name.get(name, [])

    def one(self, name: str) -> Seg | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    @cached_property
    def _by_name(self) -> dict[str, list[Seg]]:
        index: dict[str, list[Seg]] = {}
        for seg in self.segments:
            index.setdefault(seg.name, []).append(seg)
        return index

    @property
    def source_key(self) -> str:
        h = self.header
        return f"hl7v2:{h.sending_application}|{h.sending_facility}|{h.control_id}"

    @property
    def fingerprint(self) -> str:
        """The content without MSH-7 (a resend may re-stamp it) and MSH-8 (the API key)."""
        return "sha256:" + hashlib.sha256(redacted(self.text, blank_time=True).encode()).hexdigest()


def redacted(text: str, *, blank_time: bool = False) -> str:
    """``text`` with MSH-8 (Security: where an API key travels) blanked, MSH-7 too if asked."""
    head, sep, rest = text.partition("\r")
    if len(head) < 4 or not head.startswith("MSH"):
        return text
    fields = head.split(head[3])
    if len(fields) > 7 and fields[7]:
        fields[7] = ""
    if blank_time and len(fields) > 6:
        fields[6] = ""
    return head[3].join(fields) + sep + rest


def parse(text: str) -> Hl7Message:
    """One message (CR-separated) -> its header and the segments mapping reads."""
    lines = [line for line in text.split("\r") if line]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise Refused([Problem("MSH", "a message must start with an MSH segment", "100")])
    if len(lines) > MAX_SEGMENTS:
        raise Refused([Problem("MSH", f"more than {MAX_SEGMENTS} segments", "100")])
    separator = lines[0][3]
    if separator.isalnum() or separator in " \t":
        raise Refused([Problem("MSH-1", "not a field separator", "102")])
    seps = Separators.of(lines[0])
    if len({seps.field, seps.component, seps.repetition, seps.escape, seps.subcomponent}) < 5:
        raise Refused([Problem("MSH-2", "encoding characters must differ", "102")])
    ordinals: dict[str, int] = {}
    segments = []
    for index, line in enumerate(lines, start=1):
        name = line[:3]
        if not _SEGMENT_ID.match(name) or (len(line) > 3 and line[3] != separator):
            raise Refused([Problem(f"segment {index}", "not an HL7 segment", "100")])
        ordinals[name] = ordinals.get(name, 0) + 1
        if name in READ:
            segments.append(Seg(name, ordinals[name], line, seps))
    header = _header(segments[0])
    return Hl7Message(text=text, header=header, segments=tuple(segments))


def _header(msh: Seg) -> Header:
    type_ = msh.first(9)
    header = Header(
        sending_application=msh.raw(3),
        sending_facility=msh.raw(4),
        receiving_application=msh.raw(5),
        receiving_facility=msh.raw(6),
        timestamp=msh.value(7),
        security=msh.value(8),
        message_type=msh.part(type_, 1).upper(),
        trigger=msh.part(type_, 2).upper(),
        control_id=msh.value(10),
        processing_id=msh.value(11).upper(),
        version=msh.value(12),
        encoding=msh.raw(2),
    )
    if not header.control_id:
        raise Refused([Problem("MSH-10", "required: the message control id", "101")])
    if not header.message_type:
        raise Refused([Problem("MSH-9", "required: the message type", "101")])
    return header
