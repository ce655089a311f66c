"""Raw bytes of each route -> Submissions: identity, fingerprint, stored form and mapping.

Pure (no I/O): the API, the MLLP listener and replay all build submissions here, so a replayed
message is read exactly as it was when it arrived. A refusal of the whole body (not JSON, no
MSH segment) raises ``Refused``; a message-level refusal is carried in ``Submission.refused``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from services.ingest import domain
from services.ingest.domain import MappingContext, Problem, Refused
from services.ingest.fhir.mapper import read_and_map as map_fhir
from services.ingest.fhir.reading import fingerprint as fhir_fingerprint
from services.ingest.hl7v2.mapper import map_message
from services.ingest.hl7v2.reading import Hl7Message, parse, redacted, split_messages
from services.ingest.mapping.drafts import Mapped

MAX_BODY_BYTES = 8 * 1024 * 1024
# MSH-10 is an ST of at most 199 characters (v2.7+; 20 before); the identity fields are kept in
# an index, so a longer one is refused before it reaches the database.
MAX_CONTROL_ID = 199
MAX_IDENTITY_FIELD = 227
_CONTROL_CHARS = frozenset(chr(c) for c in [*range(0x20), 0x7F])


@dataclass(frozen=True)
class Submission:
    """One source message for one clinic, mapped or refused, with what is stored of it."""

    clinic_id: str
    route: str  # json | fhir | fhir-put:<Type>/<id> | hl7v2 | mllp
    source_key: str | None  # None when the message could not even be identified
    fingerprint: str
    raw: bytes  # stored for replay (HL7: MSH-8, where an API key may travel, blanked)
    ctx: MappingContext
    mapped: Mapped | None = None
    refused: Refused | None = None
    key_loc: str = "Idempotency-Key"  # what names the identity, for a conflict
    label: str = ""  # the message's own id for answers (HL7 MSH-10), never PHI


def parse_json(raw: bytes) -> Any:
    if b"\\u0000" in raw or b"\x00" in raw:
        # No record may hold NUL (PostgreSQL text cannot): refused here, not by the database.
        raise Refused([Problem("(body)", "contains a NUL character (\\u0000)")], reject=True)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}"
        raise Refused([Problem("(body)", f"not valid JSON at {where}")]) from None
    except RecursionError:
        raise Refused([Problem("(body)", "JSON nested too deeply")]) from None


def native(
    raw: bytes, clinic_id: str, idempotency_key: str | None, ctx: MappingContext
) -> Submission:
    key = domain.dedupe_key(raw, idempotency_key)
    doc = parse_json(raw)
    base = Submission(clinic_id, "json", key, domain.dedupe_key(raw, None), raw, ctx)
    try:
        facts = domain.parse_native(doc, clinic_id=clinic_id)
    except Refused as exc:
        return _with(base, refused=exc)
    return _with(base, mapped=Mapped(tuple(facts)))


def fhir(
    raw: bytes,
    clinic_id: str,
    idempotency_key: str | None,
    ctx: MappingContext,
    path: tuple[str, str] | None = None,
) -> Submission:
    route = f"fhir-put:{path[0]}/{path[1]}" if path else "fhir"
    doc = parse_json(raw)
    print_ = fhir_fingerprint(doc)
    key = f"key:{idempotency_key.strip()}" if idempotency_key else None
    base = Submission(clinic_id, route, key, print_, raw, ctx)
    try:
        document, mapped = map_fhir(doc, ctx, path=path)
    except Refused as exc:
        return _with(base, refused=exc)
    loc = (
        "Idempotency-Key"
        if key
        else "Bundle.id"
        if document.source_key.startswith("fhir:Bundle")
        else "meta.versionId"
    )
    return _with(base, source_key=key or document.source_key, mapped=mapped, key_loc=loc)


def decode_hl7(raw: bytes) -> str:
    """HL7 v2 text; UTF-8 (v2.8's default), else Latin-1, which decodes any byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def hl7_body(
    raw: bytes, clinic_id: str, idempotency_key: str | None, ctx: MappingContext, route: str
) -> list[Submission]:
    """Every message of an HTTP body (or one MLLP frame) as its own submission."""
    texts = split_messages(decode_hl7(raw))
    return [
        hl7_message(
            text,
            clinic_id,
            ctx,
            route,
            key=f"key:{idempotency_key.strip()}/{index}" if idempotency_key else None,
        )
        for index, text in enumerate(texts)
    ]


def hl7_message(
    text: str, clinic_id: str, ctx: MappingContext, route: str, *, key: str | None = None
) -> Submission:
    stored = redacted(text)
    base = Submission(clinic_id, route, key, "", stored.encode("utf-8"), ctx, key_loc="MSH-10")
    try:
        msg = parse(text)
    except Refused as exc:
        return _with(base, refused=exc)
    return hl7_parsed(msg, base)


def identity_problems(msg: Hl7Message) -> list[Problem]:
    """What makes a message's identity (MSH-3, MSH-4, MSH-10) unfit to store or to answer."""
    problems = []
    h = msg.header
    for loc, value, limit in (
        ("MSH-10", h.control_id, MAX_CONTROL_ID),
        ("MSH-3", h.sending_application, MAX_IDENTITY_FIELD),
        ("MSH-4", h.sending_facility, MAX_IDENTITY_FIELD),
    ):
        if len(value) > limit:
            problems.append(Problem(loc, f"at most {limit} characters", "102"))
        elif any(c in _CONTROL_CHARS for c in value):
            problems.append(Problem(loc, "contains a control character", "102"))
    return problems


def hl7_parsed(msg: Hl7Message, base: Submission) -> Submission:
    if problems := identity_problems(msg):
        # Refused before anything is stored: AR, so the sender does not resend it as it is.
        return _with(base, refused=Refused(problems, reject=True))
    if "\x00" in msg.text:
        at = next(i for i, line in enumerate(msg.text.split("\r"), 1) if "\x00" in line)
        problem = Problem(f"segment {at}", "contains a NUL byte, which no record may hold", "102")
        return _with(base, refused=Refused([problem], reject=True))
    mapped: Mapped | None = None
    refused: Refused | None = None
    try:
        mapped = map_message(msg, base.ctx)
    except Refused as exc:
        refused = exc
    return _with(
        base,
        source_key=base.source_key or msg.source_key,
        fingerprint=msg.fingerprint,
        label=msg.header.control_id[:64],
        mapped=mapped,
        refused=refused,
    )


def _with(base: Submission, **changes: Any) -> Submission:
    return replace(base, **changes)
