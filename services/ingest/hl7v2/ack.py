"""Original-mode acknowledgements: MSA AA, or AE/AR with one ERR segment per problem.

Built from the received MSH line as text (not the parsed message), so even a message that
could not be parsed gets an answer addressed back to its sender (control characters dropped,
the control id cut to MSH-10's 199 characters). ERR names the segment,
its sequence and the field (ERR-2 from v2.5, ERR-1 before), the table 0357 error code and a
message that never repeats a value from the message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from services.ingest.domain import Problem

ERROR_NAMES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
_LOC = re.compile(r"^(?:messages\[\d+\]\.)?([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+))?")
_VERSION = re.compile(r"^2\.(\d+)")


def _msh_fields(text: str | None) -> tuple[str, str, list[str]]:
    head = (text or "").split("\r", 1)[0].split("\n", 1)[0]
    # Echoed fields lose the control characters (a NUL in MSH-10 is a reason for an AR, and
    # must not break the sender's parser when it comes back).
    head = "".join(c for c in head if c >= " " and c != "\x7f")
    if len(head) >= 8 and head.startswith("MSH") and not head[3].isalnum():
        separator = head[3]
        fields = ["MSH", separator, *head[4:].split(separator)]
        encoding = fields[2] if len(fields[2]) >= 4 else "^~\\&"
        return separator, encoding, fields
    return "|", "^~\\&", ["MSH", "|", "^~\\&"]


def _get(fields: list[str], position: int) -> str:
    return fields[position] if position < len(fields) else ""


def _escape(text: str, separator: str, encoding: str) -> str:
    esc = encoding[2] if len(encoding) > 2 else "\\"
    table = {esc: "E", separator: "F", encoding[0]: "S", encoding[1]: "R"}
    if len(encoding) > 3:
        table[encoding[3]] = "T"
    return "".join(f"{esc}{table[c]}{esc}" if c in table else c for c in text.replace("\r", " "))


def build_ack(
    received: str | None,
    code: str,
    problems: Sequence[Problem] = (),
    *,
    now: datetime | None = None,
) -> str:
    """The ACK for ``received`` (the message text as it arrived); ``code`` is AA, AE or AR."""
    sep, enc, msh = _msh_fields(received)
    component = enc[0]
    # An unfit control id (a NUL, a control character, too long) is the reason for an AR: it is
    # echoed without the characters a sender's parser may choke on, and cut to MSH-10's size.
    control_id = _get(msh, 10).split(component)[0][:199]
    trigger = _get(msh, 9).split(component)[1] if component in _get(msh, 9) else ""
    version = _get(msh, 12).split(component)[0] or "2.5"
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    header = [
        "MSH",
        enc,
        _get(msh, 5),
        _get(msh, 6),
        _get(msh, 3),
        _get(msh, 4),
        stamp,
        "",
        f"ACK{component}{trigger}{component}ACK" if trigger else "ACK",
        f"ACK{control_id}"[:199],
        _get(msh, 11).split(component)[0] or "P",
        version,
    ]
    text = _escape(f"{problems[0].loc}: {problems[0].msg}", sep, enc) if problems else ""
    if len(text) > 80:  # MSA-3 is short: the ERR segments carry the whole text
        text = text[:80].rsplit(" ", 1)[0]
    lines = [
        sep.join(header),
        sep.join(["MSA", code, control_id, text] if text else ["MSA", code, control_id]),
    ]
    modern = _minor(version) >= 5
    for problem in problems[:20]:
        lines.append(_err(problem, sep, enc, modern))
    return "\r".join(lines) + "\r"


def _minor(version: str) -> int:
    match = _VERSION.match(version)
    return int(match.group(1)) if match else 5


def _err(problem: Problem, sep: str, enc: str, modern: bool) -> str:
    component = enc[0]
    sub = enc[3] if len(enc) > 3 else "&"
    code = problem.code or "207"
    name = ERROR_NAMES.get(code, "Application internal error")
    match = _LOC.match(problem.loc)
    where = [match.group(1), match.group(2) or "1", match.group(3) or ""] if match else ["", "", ""]
    message = _escape(f"{problem.loc}: {problem.msg}", sep, enc)
    if modern:
        location = component.join(where).rstrip(component)
        return sep.join(
            ["ERR", "", location, component.join([code, name, "HL70357"]), "E", "", "", "", message]
        )
    legacy = component.join([*where, sub.join([code, name, "HL70357"])])
    return sep.join(["ERR", legacy])
