"""Approved templates: what they are keyed by, which variables they may use, how they render.

A template is keyed by workflow, step, channel, tone and language, and versioned; only an
approved version is ever sent. Variables come from a whitelist, each with a longest value (so
the linter can judge an SMS's worst-case length). None of them can carry a diagnosis: the
service name is the patient-facing name of the visit, from the table below.

A variable states a fact, so a step template never renders with one missing: ``render`` raises
:class:`MissingFact` naming it (the messenger then blocks the step with that reason) rather
than fill in a stand-in such as "in the coming weeks". Words that only make sense when a fact
is known go in an optional section, ``[[ with {provider_name}]]``, which is left out whole when
any variable inside it has no value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from shared.events.common import Channel, ClinicalUrgency, Purpose, ServiceLine
from shared.events.outreach import Tone

LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Variable:
    max_len: int
    meaning: str


VARIABLES: dict[str, Variable] = {
    "first_name": Variable(20, "the patient's given name"),
    "practice_name": Variable(40, "the practice's name"),
    "practice_phone": Variable(16, "the practice's phone number"),
    "provider_name": Variable(30, "the display name of the provider who documented the care"),
    "service_name": Variable(32, "the patient-facing name of the visit (never a condition)"),
    "source_date": Variable(24, "the day the documented source was recorded"),
    "due_date": Variable(24, "the documented due date of the care"),
    "due_month": Variable(18, "the month of the documented due date"),
    "booking_link": Variable(40, "the practice's online booking page"),
    "reason": Variable(
        220, "the workflow's sentence naming the documented source and due date (reasons.py)"
    ),
}
"""The whitelist. Anything else in braces is refused by the linter."""

# Variables only the messenger's own conversation replies use (never a workflow template).
SYSTEM_VARIABLES: dict[str, Variable] = {
    "emergency_number": Variable(6, "the local emergency number"),
    "slot_list": Variable(120, "the offered times"),
    "slot_time": Variable(30, "the chosen time"),
    "snooze_date": Variable(20, "when the patient asked to hear from us again"),
    "other_provider_name": Variable(30, "the provider whose times are offered instead"),
}

# Workflows whose templates may also state the times they offer (``slot_time``): the freed-slot
# offer, written by Revisit rather than commanded as a step.
SLOT_WORKFLOWS = frozenset({"freed_slot"})

# Conversation replies answer what a patient just wrote and keep a neutral word for an unknown
# value (see ``fill``); step templates never do (see ``render``).
REPLY_FALLBACKS: dict[str, dict[str, str]] = {
    "first_name": {"en": "there", "es": ""},
    "practice_name": {"en": "your dermatology practice", "es": "su dermatología"},
    "practice_phone": {"en": "our office", "es": "nuestra oficina"},
    "provider_name": {"en": "our team", "es": "nuestro equipo"},
    "other_provider_name": {"en": "another provider", "es": "otro profesional"},
    "service_name": {"en": "appointment", "es": "cita"},
    "booking_link": {"en": "our office", "es": "nuestra oficina"},
    "emergency_number": {"en": "911", "es": "911"},
    "slot_list": {"en": "", "es": ""},
    "slot_time": {"en": "the time you chose", "es": "la hora elegida"},
    "snooze_date": {"en": "a while", "es": "un tiempo"},
}


SERVICE_NAMES: dict[str, dict[ServiceLine, str]] = {
    "en": {
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
        ServiceLine.unspecified: "visit",
    },
    "es": {
        ServiceLine.skin_check: "revisión de piel",
        ServiceLine.biopsy_follow_up: "cita de seguimiento",
        ServiceLine.skin_cancer_surgery: "cita del procedimiento",
        ServiceLine.mohs: "cita del procedimiento",
        ServiceLine.acne: "cita de cuidado de la piel",
        ServiceLine.isotretinoin: "cita mensual",
        ServiceLine.rosacea: "cita de cuidado de la piel",
        ServiceLine.psoriasis_eczema: "cita de revisión",
        ServiceLine.hair_loss: "cita de seguimiento",
        ServiceLine.phototherapy: "sesión de tratamiento con luz",
        ServiceLine.patch_testing: "cita de pruebas de parche",
        ServiceLine.general_dermatology: "consulta de dermatología",
        ServiceLine.cosmetic_consult: "consulta",
        ServiceLine.neurotoxin: "tratamiento estético",
        ServiceLine.filler: "tratamiento estético",
        ServiceLine.laser: "sesión de láser",
        ServiceLine.chemical_peel: "cita de peeling",
        ServiceLine.microneedling: "sesión de microneedling",
        ServiceLine.unspecified: "cita",
    },
}

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
}


def service_name(service_line: ServiceLine, language: str) -> str:
    return SERVICE_NAMES.get(language, SERVICE_NAMES["en"]).get(service_line, "appointment")


def month_name(month: int, year: int, language: str) -> str:
    name = MONTHS.get(language, MONTHS["en"]).split()[month - 1]
    return f"{name} {year}" if language == "en" else f"{name} de {year}"


def day_name(day: date, language: str, *, today: date | None = None) -> str:
    """A date as a patient reads it: "March 3" (with the year when it is not this year's)."""
    month = MONTHS.get(language, MONTHS["en"]).split()[day.month - 1]
    with_year = today is None or day.year != today.year
    if language == "es":
        return f"{day.day} de {month}" + (f" de {day.year}" if with_year else "")
    return f"{month} {day.day}" + (f", {day.year}" if with_year else "")


@dataclass(frozen=True)
class Template:
    workflow_key: str
    step: int
    channel: Channel
    tone: Tone
    language: str
    body: str
    subject: str | None = None  # e-mail only
    purpose: Purpose = Purpose.care
    urgency: ClinicalUrgency = ClinicalUrgency.routine  # the most urgent step it may serve
    version: int = 1
    template_id: int | None = None

    @property
    def key(self) -> str:
        return f"{self.workflow_key}.{self.step}"

    @property
    def first_contact(self) -> bool:
        """Step 1 is the first message of a sequence: it must say how to opt out."""
        return self.step == 1

    def with_version(self, version: int, template_id: int | None = None) -> Template:
        return replace(self, version=version, template_id=template_id)


def parse_template_key(key: str) -> tuple[str, int] | None:
    """``<workflow_key>.<step>`` -> (workflow_key, step); None when it is not shaped so."""
    workflow, _, step = key.rpartition(".")
    if not workflow or not step.isdigit():
        return None
    return workflow, int(step)


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None


class TemplateFormatError(ValueError):
    """The template text is not a valid format string (the linter says where)."""


class MissingFact(ValueError):
    """A step's words need a fact that is not known (the step is blocked, never guessed at)."""

    def __init__(self, variable: str, why: str = "no value") -> None:
        super().__init__(f"{{{variable}}}: {why}")
        self.variable = variable
        self.why = why


_SECTION = re.compile(r"\[\[(.*?)\]\]", re.S)


def sections(text: str) -> list[str]:
    """The optional sections of ``text`` (what is between ``[[`` and ``]]``)."""
    if text.count("[[") != text.count("]]") or "[[" in "".join(_SECTION.sub("", text)):
        raise TemplateFormatError("an optional section [[...]] is not closed")
    return _SECTION.findall(text)


def placeholders(text: str) -> list[str]:
    """Every ``{name}`` in ``text`` (sections included); TemplateFormatError for anything else
    in braces or an unclosed section."""
    sections(text)
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text.replace("[[", "").replace("]]", "")))
    except ValueError as exc:
        raise TemplateFormatError(f"unbalanced braces ({exc})") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier() or spec or conversion:
            raise TemplateFormatError("a placeholder must be a plain {name}")
        names.append(name)
    return names


def _known(name: str, values: Mapping[str, str | None]) -> str | None:
    value = (values.get(name) or "").strip()
    var = VARIABLES.get(name) or SYSTEM_VARIABLES.get(name)
    if not value or (var is not None and len(value) > var.max_len):
        return None
    return value


_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:])")
_DOUBLE_SPACE = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


def _tidy(text: str) -> str:
    # A section left out must not leave "Hi ," or a double space behind.
    return _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", text))


def strict_fill(text: str, values: Mapping[str, str | None]) -> str:
    """Substitute the variables; sections whose facts are unknown are left out, and a missing
    fact anywhere else raises :class:`MissingFact` with its name."""
    placeholders(text)
    kept: list[str] = []

    def section(m: re.Match[str]) -> str:
        inner = m.group(1)
        names = placeholders(inner)
        known = {n: _known(n, values) for n in names}
        kept.append("" if None in known.values() else inner.format_map(known))
        return f"\0{len(kept) - 1}\0"

    outside = _SECTION.sub(section, text)
    filled: dict[str, str] = {}
    for name in placeholders(outside):
        value = _known(name, values)
        if value is None:
            raw = (values.get(name) or "").strip()
            raise MissingFact(name, "too long" if raw else "no value")
        filled[name] = value
    body = outside.format_map(filled)
    for index, piece in enumerate(kept):
        body = body.replace(f"\0{index}\0", piece)
    return _tidy(body)


def fill(text: str, values: Mapping[str, str | None], language: str) -> str:
    """For conversation replies only: a neutral word stands in for an unknown value (they
    answer what the patient just wrote; a step template goes through ``render``)."""

    def value(name: str) -> str:
        known = _known(name, values)
        if known is not None:
            return known
        words = REPLY_FALLBACKS.get(name, {})
        return words.get(language, words.get("en", ""))

    def section(m: re.Match[str]) -> str:
        names = placeholders(m.group(1))
        if any(_known(n, values) is None for n in names):
            return ""
        return m.group(1).format_map({n: value(n) for n in names})

    outside = _SECTION.sub(lambda m: section(m).replace("{", "{{").replace("}", "}}"), text)
    return _tidy(outside.format_map({n: value(n) for n in placeholders(outside)}))


def render(template: Template, values: Mapping[str, str | None]) -> Rendered:
    """The words of a step; :class:`MissingFact` when a fact they state is unknown."""
    subject = strict_fill(template.subject, values) if template.subject else None
    return Rendered(body=strict_fill(template.body, values), subject=subject)


def worst_case(text: str, longest: Mapping[str, int] | None = None) -> str:
    """``text`` with every variable at its longest allowed value and every optional section
    kept (for length checks). ``longest`` overrides a variable's longest length."""
    names = placeholders(text)
    sizes = {
        n: (longest or {}).get(n)
        or (VARIABLES.get(n) or SYSTEM_VARIABLES.get(n) or Variable(40, "")).max_len
        for n in names
    }
    flat = text.replace("[[", "").replace("]]", "")
    return flat.format_map({n: "x" * size for n, size in sizes.items()})


# GSM 03.38 basic character set plus its extension table (which costs two septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` costs (GSM-7 when it can, else UCS-2)."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        septets = sum(2 if c in _GSM_EXT else 1 for c in text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def select_template(
    candidates: list[Template],
    *,
    language: str,
    tone: Tone,
    urgency: ClinicalUrgency,
) -> Template | None:
    """The approved version to send: never more urgent than the step's documented urgency;
    the patient's language first (English otherwise), the step's tone first."""
    usable = [t for t in candidates if t.urgency.rank <= urgency.rank]
    for lang in dict.fromkeys((language, "en")):
        in_language = [t for t in usable if t.language == lang]
        if not in_language:
            continue
        in_language.sort(key=lambda t: (t.tone is not tone, -t.urgency.rank, -t.version))
        return in_language[0]
    return None
