"""The first message's reason: the documented source and due date, in the patient's words.

A step-1 template says ``{reason}``; its value is one sentence naming where the need came from
("At your visit on May 9 with Dr. Rivera, ...", "When you wrote to us on March 3, ...", "Your
acne visit on March 10 was cancelled.") and, when the plan gives one, a second naming the due
date, worded differently before and after it ("It is due by ..." / "It was due by ... and is
not booked yet."). Each sentence is built only from facts the command carries; a fact it needs
and does not have raises :class:`MissingFact` (the step is blocked), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache

from services.messenger.domain.templates import MissingFact, strict_fill, worst_case
from shared.events.eligibility import Documented, ReasonSource

S = ReasonSource
Words = dict[str, str]  # language -> words


class Due(StrEnum):
    ahead = "ahead"  # the due date has not passed
    passed = "passed"  # the due date has passed and nothing is booked
    none = "none"  # the plan gives no due date


# --- where the need came from -----------------------------------------------------------------

_WITH = "[[ with {provider_name}]]"
_CON = "[[ con {provider_name}]]"

SOURCES: dict[ReasonSource, Words] = {
    S.visit: {
        "en": "At your visit on {source_date}" + _WITH + ", a {service_name} was recommended "
        "for you.",
        "es": "En su visita del {source_date}" + _CON + ", se le recomendó volver para su "
        "{service_name}.",
    },
    S.treatment_plan: {
        "en": "Your treatment plan of {source_date}[[ from {provider_name}]] includes a "
        "{service_name}.",
        "es": "Su plan de tratamiento del {source_date}[[ de {provider_name}]] incluye su "
        "{service_name}.",
    },
    S.surveillance_plan: {
        "en": "Your care plan of {source_date}" + _WITH + " includes a regular {service_name}.",
        "es": "Su plan de cuidado del {source_date}" + _CON + " incluye su {service_name} de "
        "forma periódica.",
    },
    S.series: {
        "en": "Your last {service_name} in your treatment series" + _WITH + " was on "
        "{source_date}.",
        "es": "Su serie de tratamiento" + _CON + " continúa: su visita anterior "
        "({service_name}) fue el {source_date}.",
    },
    S.consultation: {
        "en": "At your consultation on {source_date}" + _WITH + ", a {service_name} was "
        "recommended for you.",
        "es": "En su consulta del {source_date}" + _CON + ", se le recomendó: {service_name}.",
    },
    S.portal_question: {
        "en": "When you wrote to us on {source_date}, a clinician asked to see you for a "
        "{service_name}" + _WITH + ".",
        "es": "Cuando nos escribió el {source_date}, un profesional pidió verle para su "
        "{service_name}" + _CON + ".",
    },
    S.phone_question: {
        "en": "When you called us on {source_date}, a clinician asked to see you for a "
        "{service_name}" + _WITH + ".",
        "es": "Cuando nos llamó el {source_date}, un profesional pidió verle para su "
        "{service_name}" + _CON + ".",
    },
    S.question: {
        "en": "After your question on {source_date}, a clinician asked to see you for a "
        "{service_name}" + _WITH + ".",
        "es": "Tras su pregunta del {source_date}, un profesional pidió verle para su "
        "{service_name}" + _CON + ".",
    },
    S.cancellation: {
        "en": "Your {service_name}" + _WITH + " on {source_date} was cancelled.",
        "es": "Se canceló su {service_name}" + _CON + " del {source_date}.",
    },
    S.practice_cancellation: {
        "en": "We had to cancel your {service_name}" + _WITH + " on {source_date}; sorry.",
        "es": "Tuvimos que cancelar su {service_name}" + _CON + " del {source_date}; disculpe.",
    },
    S.no_show: {
        "en": "We missed you at your {service_name}" + _WITH + " on {source_date}.",
        "es": "Le esperábamos en su {service_name}" + _CON + " del {source_date}.",
    },
}

# A workflow's own words for a source, where the general ones would read wrongly.
WORKFLOW_SOURCES: dict[str, dict[ReasonSource, Words]] = {
    "skin_cancer_surveillance": {
        S.visit: {
            "en": "At your visit on {source_date}" + _WITH + ", your next {service_name} was "
            "planned.",
            "es": "En su visita del {source_date}" + _CON + ", se planeó su próxima "
            "{service_name}.",
        },
    },
    "cosmetic_maintenance": {
        S.visit: {
            "en": "Your last {service_name}" + _WITH + " was on {source_date}.",
            "es": "Su visita anterior ({service_name})" + _CON + " fue el {source_date}.",
        },
    },
    "lapsed_patient": {
        S.visit: {
            "en": "It has been a while since your last visit" + _WITH + " on {source_date}.",
            "es": "Ha pasado un tiempo desde su última visita" + _CON + ", el {source_date}.",
        },
    },
}

# --- when it is due ----------------------------------------------------------------------------

DUE: dict[Due, Words] = {
    Due.ahead: {
        "en": "It is due by {due_date}.",
        "es": "La fecha prevista es el {due_date}.",
    },
    Due.passed: {
        "en": "It was due by {due_date} and is not booked yet.",
        "es": "La fecha prevista era el {due_date} y aún no tiene cita.",
    },
}

WORKFLOW_DUE: dict[str, dict[Due, Words]] = {
    "treatment_series": {
        Due.ahead: {
            "en": "The next one is due by {due_date}.",
            "es": "La siguiente fecha prevista es el {due_date}.",
        },
        Due.passed: {
            "en": "The next one was due by {due_date} and is not booked yet.",
            "es": "La siguiente fecha prevista era el {due_date} y aún no tiene cita.",
        },
    },
    "cosmetic_maintenance": {
        Due.ahead: {
            "en": "The usual time for the next one starts on {due_date}.",
            "es": "El momento habitual para la siguiente empieza el {due_date}.",
        },
        Due.passed: {
            "en": "The usual time for the next one began on {due_date}.",
            "es": "El momento habitual para la siguiente empezó el {due_date}.",
        },
    },
    "consult_not_started": {
        Due.ahead: {
            "en": "The suggested start is by {due_date}.",
            "es": "El inicio sugerido es el {due_date}.",
        },
        Due.passed: {
            "en": "The suggested start was by {due_date}.",
            "es": "El inicio sugerido era el {due_date}.",
        },
    },
}

# After a poor experience the words apologise and listen; they name no source and no date.
RECOVERY: Words = {
    "en": "We are sorry your experience with us was not what it should have been.",
    "es": "Lamentamos que su experiencia con nosotros no haya sido la que debía.",
}
SERVICE_RECOVERY = "service_recovery"
_QUESTIONS = (S.portal_question, S.phone_question, S.question)
_PLANS = (S.visit, S.treatment_plan, S.surveillance_plan)

# The sources each default workflow is routed from (the sequencer's routes): the linter judges
# a template's worst-case length on these. Another source is still said, and the final text is
# checked again at send time.
EXPECTED_SOURCES: dict[str, tuple[ReasonSource, ...]] = {
    "skin_cancer_surveillance": (*_PLANS, *_QUESTIONS),
    "chronic_review": _PLANS,
    "follow_up": (*_PLANS, *_QUESTIONS),
    "treatment_series": (S.series,),
    "acne_follow_up": (*_PLANS, *_QUESTIONS),
    "cosmetic_maintenance": (S.visit,),
    "consult_not_started": (S.consultation,),
    "cancellation_recovery": (S.cancellation, S.practice_cancellation, S.no_show),
    "lapsed_patient": (S.visit,),
}
# Needs that never have a due date (a cancellation, a lapse): no due sentence to judge.
UNDATED = frozenset({"cancellation_recovery", "lapsed_patient"})


def due_state(documented: Documented | None, overdue: bool | None) -> Due:
    if documented is None or documented.due_on is None or overdue is None:
        return Due.none
    return Due.passed if overdue else Due.ahead


def phrases(workflow: str, source: ReasonSource, due: Due) -> list[Words]:
    """The sentences the reason is made of, before their facts are filled in."""
    if workflow == SERVICE_RECOVERY:
        return [RECOVERY]
    found = [WORKFLOW_SOURCES.get(workflow, {}).get(source) or SOURCES[source]]
    if due is not Due.none:
        found.append(WORKFLOW_DUE.get(workflow, {}).get(due) or DUE[due])
    return found


def reason_text(
    workflow: str,
    documented: Documented | None,
    overdue: bool | None,
    language: str,
    values: Mapping[str, str | None],
) -> str:
    """The reason sentence(s) with their facts; :class:`MissingFact` when one is unknown."""
    if workflow == SERVICE_RECOVERY:
        return RECOVERY.get(language, RECOVERY["en"])
    if documented is None:
        raise MissingFact("reason", "the command documents no source (an older command)")
    lang = language if language in ("en", "es") else "en"
    parts = phrases(workflow, documented.source, due_state(documented, overdue))
    return " ".join(strict_fill(words[lang], values) for words in parts)


@lru_cache(maxsize=256)
def longest_reason(workflow: str) -> int:
    """The longest the reason can be for ``workflow`` with every fact at its longest (for the
    linter's SMS length check)."""
    if workflow == SERVICE_RECOVERY:
        return max(len(text) for text in RECOVERY.values())
    longest = 0
    dues = (Due.none,) if workflow in UNDATED else tuple(Due)
    for source in EXPECTED_SOURCES.get(workflow, tuple(ReasonSource)):
        for due in dues:
            for lang in ("en", "es"):
                text = " ".join(words[lang] for words in phrases(workflow, source, due))
                longest = max(longest, len(worst_case(text)))
    return longest


def every_reason(workflow: str) -> list[tuple[ReasonSource, Due, str, str]]:
    """Every (source, due state, language, words) a workflow may say, for the linter's tests."""
    return [
        (source, due, lang, " ".join(w[lang] for w in phrases(workflow, source, due)))
        for source in ReasonSource
        for due in Due
        for lang in ("en", "es")
    ]
