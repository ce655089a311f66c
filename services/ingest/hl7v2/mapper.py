"""One HL7 v2 message -> Mapped, or a refusal saying which segment and field is wrong.

AR (reject: do not resend as is) for what this interface does not take: an unsupported message
type or trigger, version or processing id. AE (error: fix and resend) for content problems.
"""

from __future__ import annotations

import re

from services.ingest.domain import MappingContext, Problem, Refused
from services.ingest.hl7v2.adt import (
    PATIENT_TRIGGERS,
    VISIT_END_TRIGGERS,
    map_patient,
    map_visit_end,
)
from services.ingest.hl7v2.charges import CHARGE_TRIGGERS, map_charges
from services.ingest.hl7v2.reading import Hl7Message, parse
from services.ingest.hl7v2.scheduling import SIU_TRIGGERS, map_siu
from services.ingest.mapping.drafts import Mapped

_VERSION = re.compile(r"^2\.[1-9](\.\d{1,2})*$")
TAKEN = "SIU S12-S17, S26; ADT A03, A04, A08, A28, A31; DFT P03"
_NAMES = {"P": "production", "T": "training", "D": "debugging"}


def read_and_map(text: str, ctx: MappingContext) -> tuple[Hl7Message, Mapped]:
    msg = parse(text)
    return msg, map_message(msg, ctx)


def map_message(msg: Hl7Message, ctx: MappingContext) -> Mapped:
    header = msg.header
    if not _VERSION.match(header.version):
        raise Refused(
            [Problem("MSH-12", "HL7 version not supported (2.1 to 2.9 are taken)", "203")],
            reject=True,
        )
    processing = header.processing_id[:1]
    if processing not in ctx.processing_ids:
        accepted = ", ".join(sorted(ctx.processing_ids))
        kind = _NAMES.get(processing, "unknown")
        raise Refused(
            [Problem("MSH-11", f"processing id {kind} is not accepted here ({accepted})", "202")],
            reject=True,
        )
    trigger = header.trigger or _evn_trigger(msg)
    notes: list[Problem] = []
    evn = msg.one("EVN")
    if evn is not None and header.trigger and evn.value(1) and evn.value(1).upper() != trigger:
        notes.append(Problem("EVN-1", "differs from the trigger in MSH-9; MSH-9 is used"))
    if header.message_type == "SIU" and trigger in SIU_TRIGGERS:
        mapped = map_siu(_with_trigger(msg, trigger), ctx)
    elif header.message_type == "ADT" and trigger in PATIENT_TRIGGERS:
        mapped = map_patient(msg, ctx)
    elif header.message_type == "ADT" and trigger in VISIT_END_TRIGGERS:
        mapped = map_visit_end(msg, ctx)
    elif header.message_type == "DFT" and trigger in CHARGE_TRIGGERS:
        mapped = map_charges(msg, ctx)
    else:
        known = header.message_type in {"SIU", "ADT", "DFT"}
        raise Refused(
            [
                Problem(
                    "MSH-9",
                    f"{header.message_type[:3]}^{trigger[:3]} is not taken here ({TAKEN})",
                    "201" if known else "200",
                )
            ],
            reject=True,
        )
    return Mapped(mapped.drafts, tuple(notes) + mapped.notes)


def _evn_trigger(msg: Hl7Message) -> str:
    evn = msg.one("EVN")
    return evn.value(1).upper() if evn is not None else ""


def _with_trigger(msg: Hl7Message, trigger: str) -> Hl7Message:
    if msg.header.trigger == trigger:
        return msg
    from dataclasses import replace

    return replace(msg, header=replace(msg.header, trigger=trigger))
