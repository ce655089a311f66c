"""The template linter: refuses, with a clear message, words a patient must never receive.

Rules (each issue names its rule):

- ``variable``: only whitelisted ``{variables}``; anything else in braces is refused.
- ``condition_word``: no diagnosis or condition word in an SMS, nor in an e-mail subject (it
  shows on a lock screen); e-mail bodies are held to the same rule, as nothing needs it.
- ``urgency``: no wording more urgent than the most urgent step the template may serve.
- ``offer``: offers and prices only in marketing templates, and there never in a sentence that
  also speaks of clinical care.
- ``opt_out``: a first contact (step 1) says how to opt out (SMS: "Reply STOP", e-mail:
  "reply STOP or UNSUBSCRIBE").
- ``carrier_keyword``: never ask a patient to reply CANCEL, END, QUIT, STOPALL, UNSUBSCRIBE or
  YES for anything (carriers treat them as opt-out / opt-in words); STOP only to opt out.
- ``length``: an SMS with every variable at its longest (and every optional section kept) must
  fit the length limit: 320 characters (two segments), a first contact 459 (three), since it
  carries the documented reason, the next step and the opt-out line.
- ``subject``: an e-mail has a subject.

``lint_final`` runs the same rules on the final text, with every value filled in, at send
time: whatever a value turned out to be, the words that go out obey them too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from services.messenger.domain.reasons import longest_reason
from services.messenger.domain.templates import (
    SLOT_WORKFLOWS,
    SYSTEM_VARIABLES,
    VARIABLES,
    Rendered,
    Template,
    TemplateFormatError,
    placeholders,
    sms_segments,
    worst_case,
)
from shared.events.common import Channel, ClinicalUrgency, Purpose

SMS_MAX_CHARS = 320
FIRST_CONTACT_MAX_CHARS = 459


@dataclass(frozen=True)
class LintIssue:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def fold(text: str) -> str:
    """Lower-case, accents removed: "Cáncer" and "cancer" look the same to the rules."""
    if text.isascii():
        return text.lower()  # nothing to remove, and every final text is folded at send time
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(*terms: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(terms) + r")(?![\w-])")


# fmt: off
CONDITION_WORDS = _words(
    # English
    r"melanomas?", r"cancers?", r"cancerous", r"carcinomas?", r"basal[ -]cell",
    r"squamous", r"bcc", r"scc", r"tumou?rs?", r"malignan(?:t|cy)", r"pre-?cancer(?:ous)?",
    r"lesions?", r"biops(?:y|ies)", r"psoriasis", r"eczema", r"dermatitis", r"acne", r"rosacea",
    r"alopecia", r"actinic", r"kerato(?:sis|ses)", r"warts?", r"herpes", r"hiv", r"std", r"sti",
    r"infect(?:ion|ions|ed)", r"fungal", r"ringworm", r"shingles", r"lupus", r"vitiligo",
    r"hidradenitis", r"scabies", r"molluscum", r"isotretinoin", r"accutane", r"methotrexate",
    r"diagnos(?:is|ed|es)", r"conditions?", r"disease",
    # Spanish (folded: accents removed)
    r"tumor(?:es)?", r"malign[oa]s?", r"lesion(?:es)?", r"biopsias?", r"eccema", r"queratosis",
    r"verrugas?", r"infeccion(?:es)?", r"hongos", r"sarna", r"isotretinoina", r"diagnostico",
    r"enfermedad(?:es)?",
)
# fmt: on

# fmt: off
URGENT_WORDS = _words(
    r"urgent(?:ly)?", r"immediately", r"right away", r"emergency", r"critical", r"asap",
    r"act now", r"don'?t wait", r"do not wait", r"without delay", r"urgente",
    r"inmediat[oa](?:mente)?", r"de inmediato", r"emergencia", r"critic[oa]", r"no espere",
    r"sin demora",
)
# fmt: on
# fmt: off
SOON_WORDS = _words(
    r"as soon as (?:possible|you can)", r"promptly", r"overdue", r"this week", r"today",
    r"lo antes posible", r"cuanto antes", r"esta semana", r"hoy", r"atrasad[oa]", r"vencid[oa]",
)
# fmt: on

OFFER_PATTERNS = (
    re.compile(r"[$€£]\s?\d"),
    re.compile(r"\d\s?%"),
    re.compile(r"\d+\s?(?:usd|dollars|dolares)\b"),
    re.compile(r"(?<!feel )\bfree\b(?! to)"),
    _words(
        r"discount(?:s|ed)?",
        r"complimentary",
        r"offers?",
        r"deals?",
        r"specials?",
        r"promo(?:tion)?s?",
        r"coupons?",
        r"save \d+",
        r"savings",
        r"on sale",
        r"en venta",
        r"prices?",
        r"pricing",
        r"limited time",
        r"descuentos?",
        r"gratis",
        r"ofertas?",
        r"promocion(?:es)?",
        r"cupon(?:es)?",
        r"ahorre",
        r"precios?",
        r"rebajas?",
    ),
)

# fmt: off
CLINICAL_WORDS = _words(
    r"skin checks?", r"skin exams?", r"exams?", r"screenings?", r"follow-?ups?", r"results?",
    r"prescriptions?", r"medications?", r"medical", r"health", r"surveillance", r"recommended",
    r"treatment plan", r"revision de piel", r"examen(?:es)?", r"seguimiento", r"resultados?",
    r"recetas?", r"medicamentos?", r"medic[oa]", r"salud", r"recomend\w+",
)
# fmt: on

CARRIER_WORDS = r"(?:cancel|end|quit|stopall|unsubscribe|yes|stop)"
REPLY_VERBS = r"(?:reply|text|send|respond|answer|responda|envie|escriba|conteste|mande)"
_ASKS_KEYWORD = re.compile(rf"\b{REPLY_VERBS}\s+(?:with\s+|con\s+)?[\"'«]?({CARRIER_WORDS})\b")
_OPT_OUT_SENTENCE = re.compile(
    r"opt out|unsubscribe|stop (?:these|this|receiving|getting)|no recibir|darse de baja|"
    r"dejar de recibir|resubscribe"
)
_NEVER_ASKED = {"cancel", "end", "quit", "yes"}

SMS_OPT_OUT = re.compile(rf"\b{REPLY_VERBS}\s+stop\b")
EMAIL_OPT_OUT = re.compile(r"unsubscribe|darse de baja|" + SMS_OPT_OUT.pattern)

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def implied_urgency(text: str) -> tuple[ClinicalUrgency, str | None]:
    folded = fold(text)
    if m := URGENT_WORDS.search(folded):
        return ClinicalUrgency.urgent, m.group(0)
    if m := SOON_WORDS.search(folded):
        return ClinicalUrgency.soon, m.group(0)
    return ClinicalUrgency.routine, None


def find_offer(text: str) -> str | None:
    folded = fold(text)
    for pattern in OFFER_PATTERNS:
        if m := pattern.search(folded):
            return m.group(0)
    return None


def lint(
    template: Template,
    *,
    sms_max_chars: int = SMS_MAX_CHARS,
    first_contact_max_chars: int = FIRST_CONTACT_MAX_CHARS,
    system: bool = False,
    worst_case_length: bool = True,
) -> list[LintIssue]:
    """Every reason ``template`` may not be approved; an empty list means it may.
    ``worst_case_length`` False skips the length rule (the final text counts its own)."""
    issues: list[LintIssue] = []
    allowed = set(VARIABLES) | (set(SYSTEM_VARIABLES) if system else set())
    if template.workflow_key in SLOT_WORKFLOWS:
        allowed.add("slot_time")
    parts = [("body", template.body)]
    if template.channel is Channel.email:
        if not (template.subject or "").strip():
            issues.append(LintIssue("subject", "an e-mail template needs a subject line"))
        else:
            parts.append(("subject", template.subject or ""))
    elif template.subject:
        issues.append(LintIssue("subject", "an SMS has no subject line; remove it"))
    where_name = "SMS" if template.channel is Channel.sms else "e-mail"

    for part, text in parts:
        try:
            names = placeholders(text)
        except TemplateFormatError as exc:
            issues.append(LintIssue("variable", f"the {part} is not a valid template: {exc}"))
            return issues
        for name in names:
            if name not in allowed:
                issues.append(
                    LintIssue(
                        "variable",
                        f"{{{name}}} in the {part} is not an allowed variable "
                        f"(allowed: {', '.join(sorted(VARIABLES))})",
                    )
                )
        folded = fold(text)
        if m := CONDITION_WORDS.search(folded):
            issues.append(
                LintIssue(
                    "condition_word",
                    f"the {where_name} {part} names a diagnosis or condition ('{m.group(0)}'); "
                    "use the patient-facing {service_name} instead",
                )
            )
        level, word = implied_urgency(text)
        if level.rank > template.urgency.rank:
            issues.append(
                LintIssue(
                    "urgency",
                    f"'{word}' makes the {part} sound {level.value}, beyond the '"
                    f"{template.urgency.value}' urgency documented for the steps it serves",
                )
            )
        offer = find_offer(text)
        if offer and template.purpose is not Purpose.marketing:
            issues.append(
                LintIssue(
                    "offer",
                    f"'{offer}' is an offer or a price; only marketing templates may carry one",
                )
            )
        elif offer:
            for sentence in sentences(text):
                clinical = CLINICAL_WORDS.search(fold(sentence))
                if find_offer(sentence) and clinical:
                    issues.append(
                        LintIssue(
                            "offer",
                            f"an offer shares a sentence with clinical care "
                            f"('{clinical.group(0)}'); put the offer in a sentence of its own",
                        )
                    )
        for sentence in sentences(folded):
            for m in _ASKS_KEYWORD.finditer(sentence):
                word = m.group(1)
                if word in _NEVER_ASKED or not _OPT_OUT_SENTENCE.search(sentence):
                    issues.append(
                        LintIssue(
                            "carrier_keyword",
                            f"asks the patient to reply {word.upper()}, a carrier opt-out/opt-in "
                            "keyword; use BOOK, a number or plain words instead",
                        )
                    )

    folded_body = fold(template.body)
    if template.first_contact and not system:
        pattern = SMS_OPT_OUT if template.channel is Channel.sms else EMAIL_OPT_OUT
        if not pattern.search(folded_body):
            line = (
                "Reply STOP to opt out"
                if template.channel is Channel.sms
                else ("To stop these e-mails, reply STOP or UNSUBSCRIBE")
            )
            issues.append(
                LintIssue("opt_out", f"a first contact must say how to opt out (e.g. '{line}')")
            )
    if (
        worst_case_length
        and template.channel is Channel.sms
        and not any(i.rule == "variable" for i in issues)
    ):
        limit = first_contact_max_chars if template.first_contact else sms_max_chars
        longest = worst_case(template.body, {"reason": longest_reason(template.workflow_key)})
        if len(longest) > limit:
            issues.append(
                LintIssue(
                    "length",
                    f"with every variable at its longest the SMS is {len(longest)} characters "
                    f"({sms_segments(longest)} segments); the limit is {limit}",
                )
            )
    return issues


def lint_final(
    template: Template,
    rendered: Rendered,
    *,
    sms_max_chars: int = SMS_MAX_CHARS,
    first_contact_max_chars: int = FIRST_CONTACT_MAX_CHARS,
    names: Iterable[str | None] = (),
) -> list[LintIssue]:
    """The rules again on the words that would go out, values filled in (send time).

    ``names`` are proper names the practice chose (its own, its providers'): "Lakeside Skin
    Cancer Center" names the practice, not the patient's condition, so the word rules read past
    them; the length rule counts them."""
    issues: list[LintIssue] = []
    judged = rendered
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        judged = Rendered(
            judged.body.replace(name, "Name"),
            judged.subject.replace(name, "Name") if judged.subject else None,
        )
    for part, text in (("body", rendered.body), ("subject", rendered.subject or "")):
        if any(mark in text for mark in ("{", "}", "[[", "]]")):
            issues.append(LintIssue("variable", f"the final {part} still has a placeholder"))
    escaped = Template(
        template.workflow_key,
        template.step,
        template.channel,
        template.tone,
        template.language,
        judged.body.replace("{", "{{").replace("}", "}}"),
        (judged.subject or "").replace("{", "{{").replace("}", "}}") or None,
        template.purpose,
        template.urgency,
    )
    issues += [i for i in lint(escaped, worst_case_length=False) if i.rule != "variable"]
    limit = first_contact_max_chars if template.first_contact else sms_max_chars
    if template.channel is Channel.sms and len(rendered.body) > limit:
        issues.append(
            LintIssue("length", f"the SMS is {len(rendered.body)} characters; the limit is {limit}")
        )
    return issues
