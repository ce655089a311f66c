"""Source identifiers -> the opaque ``Id``s events carry (no spaces, no ':', at most 128)."""

from __future__ import annotations

from urllib.parse import quote

from services.ingest.domain import Problem, Refused

# Kept as written: everything URL-safe except ':' (it separates clinic and patient in keys).
_SAFE = "-._~!$&'()*+,;=@/"
MAX_ID = 128


def opaque_id(value: str | None) -> str | None:
    """``value`` trimmed, with whitespace, ':' and '%' percent-encoded; None if empty or long."""
    text = (value or "").strip()
    if not text:
        return None
    encoded = quote(text, safe=_SAFE)
    return encoded if len(encoded) <= MAX_ID else None


def required_id(value: str | None, loc: str, what: str, code: str = "101") -> str:
    if not (value or "").strip():
        raise Refused([Problem(loc, f"required: {what}", code)])
    encoded = opaque_id(value)
    if encoded is None:
        raise Refused([Problem(loc, f"{what}: longer than {MAX_ID} characters", "102")])
    return encoded
