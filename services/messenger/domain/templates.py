"""Approved templates: what they are keyed by, which variables they may use, how they render.

A template is keyed by workflow, step, channel, tone and language, and versioned; only an
approved version is ever sent. Variables come from a whitelist, each with a longest value (so
the linter can judge an SMS's worst-case length) and a fallback for when the value is unknown
or too long. None of them can carry a diagnosis: the service name is the patient-facing name of
the visit, from the table below.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.events.common import Channel, ClinicalUrgency, Purpose, ServiceLine
from shared.events.outreach import Tone

LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Variable:
    max_len: int
    fallback: Mapping[str, str]  # language -> text used when the value is missing or too long


VARIABLES: dict[str, Variable] = {
    "first_name": Variable(20, {"en": "there", "es": ""}),
    "practice_name": Variable(40, {"en": "your dermatology practice", "es": "su dermatología"}),
    "practice_phone": Variable(16, {"en": "our office", "es": "nuestra oficina"}),
    "provider_name": Variable(30, {"en": "our team", "es": "nuestro equipo"}),
    "service_name": Variable(32, {"en": "appointment", "es": "cita"}),
    "due_month": Variable(18, {"en": "the coming weeks", "es": "las próximas semanas"}),
    "booking_link": Variable(40, {"en": "our office", "es": "nuestra oficina"}),
}
"""The whitelist. Anything else in braces is refused by the linter."""

# Variables only the messenger's own conversation replies use (never a workflow template).
SYSTEM_VARIABLES: dict[str, Variable] = {
    "emergency_number": Variable(6, {"en": "911", "es": "911"}),
    "slot_list": Variable(120, {"en": "", "es": ""}),
    "slot_time": Variable(30, {"en": "the time you chose", "es": "la hora elegida"}),
    "snooze_date": Variable(20, {"en": "a while", "es": "un tiempo"}),
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
        ServiceLine.unspecified: "appointment",
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


def placeholders(text: str) -> list[str]:
    """Every ``{name}`` in ``text``; TemplateFormatError for anything else in braces."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateFormatError(f"unbalanced braces ({exc})") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier() or spec or conversion:
            raise TemplateFormatError("a placeholder must be a plain {name}")
        names.append(name)
    return names


def _value(name: str, values: Mapping[str, str | None], language: str) -> str:
    var = VARIABLES.get(name) or SYSTEM_VARIABLES[name]
    value = (values.get(name) or "").strip()
    if not value or len(value) > var.max_len:
        return var.fallback.get(language, var.fallback["en"])
    return value


_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:])")


def fill(text: str, values: Mapping[str, str | None], language: str) -> str:
    """Substitute whitelisted variables (fallbacks for missing or over-long values)."""
    filled = text.format_map({n: _value(n, values, language) for n in placeholders(text)})
    # An empty fallback (a Spanish greeting without a name) must not leave "Hola ,".
    return _SPACE_BEFORE_PUNCT.sub(r"\1", filled)


def render(template: Template, values: Mapping[str, str | None]) -> Rendered:
    subject = fill(template.subject, values, template.language) if template.subject else None
    return Rendered(body=fill(template.body, values, template.language), subject=subject)


def worst_case(text: str) -> str:
    """``text`` with every variable at its longest allowed value (for length checks)."""
    names = placeholders(text)
    longest = {
        n: "x" * (VARIABLES.get(n) or SYSTEM_VARIABLES.get(n) or Variable(40, {})).max_len
        for n in names
    }
    return text.format_map(longest)


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
