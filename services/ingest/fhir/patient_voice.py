"""What patients told the practice: Communication, Consent and QuestionnaireResponse.

- Communication sent by the patient (sender is a Patient) -> PatientQuestionReceived; the text
  stays in the EHR. It counts as answered when a Communication in the same Bundle responds to
  it (inResponseTo) from someone else. The conversation Revisit itself writes to the chart
  (identifier ``urn:revisit:message``) is left out when the EHR feeds it back.
- Consent -> ConsentChanged only when it is about contacting the patient: a category or
  provision purpose coded HMARKT (v3-ActReason, marketing) or from the code system
  ``urn:revisit:communication-consent`` (care, marketing, care-sms, care-email, marketing-sms,
  marketing-email). Privacy and record-access consents are not about messages and are left out.
- QuestionnaireResponse (completed or amended) with an item ``sentiment`` (poor/neutral/good),
  or a 0-10 score (linkId ``nps``, ``likelihood-to-recommend``, ``ltr`` or ``score``: 0-6 poor,
  7-8 neutral, 9-10 good), or a meta.tag ``poor-experience`` -> ExperienceFeedbackRecorded;
  ``topics`` answers coded with the FeedbackTopic values are carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services.ingest.domain import Fact, Problem, build
from services.ingest.fhir.context import DocumentContext, codes, codings
from services.ingest.fhir.reading import Entry
from shared.events.common import Channel, Purpose
from shared.events.ehr import (
    ConsentChanged,
    ConsentStatus,
    ExperienceFeedbackRecorded,
    FeedbackTopic,
    PatientQuestionReceived,
    QuestionChannel,
    Sentiment,
)

CONSENT_SYSTEM = "urn:revisit:communication-consent"
REVISIT_MESSAGE = "urn:revisit:message"  # the messenger's Communications in the chart
_CONSENT_CODES = {
    "care": (Purpose.care, None),
    "marketing": (Purpose.marketing, None),
    "care-sms": (Purpose.care, Channel.sms),
    "care-email": (Purpose.care, Channel.email),
    "marketing-sms": (Purpose.marketing, Channel.sms),
    "marketing-email": (Purpose.marketing, Channel.email),
}
_MEDIUM = {
    "PHONE": QuestionChannel.phone,
    "EMAILWRIT": QuestionChannel.email,
    "ONLINEWRIT": QuestionChannel.portal,
    "ELECTRONIC": QuestionChannel.portal,
    "FACE": QuestionChannel.in_person,
}
Mapped = tuple[list[Fact], list[Problem]]


def map_communication(entry: Entry, doc: DocumentContext) -> Mapped:
    com, loc = entry.resource, entry.loc
    if any(i.system == REVISIT_MESSAGE for i in com.identifier or []):
        # Revisit's own record of a text it sent or received, written to the chart and fed
        # back by the EHR: the conversation is already Revisit's, it is not a new question.
        return [], [Problem(f"{loc}.identifier", "written by Revisit: not a new question")]
    if doc.target(com.sender)[0] != "Patient":
        return [], [Problem(f"{loc}.sender", "not sent by the patient: not a patient question")]
    if com.status not in {"completed", "in-progress"}:
        return [], [Problem(f"{loc}.status", "only a completed or in-progress communication")]
    patient_id = doc.patient(com.subject or com.sender, f"{loc}.subject")
    medium = next((_MEDIUM[c] for c in codes(com.medium) if c in _MEDIUM), QuestionChannel.other)
    answered = any(
        any(doc.id_of(ref, "Communication") == com.id for ref in other.resource.inResponseTo or [])
        and doc.target(other.resource.sender)[0] != "Patient"
        for other in doc.of_type("Communication")
    )
    line = doc.ctx.service_lines.first(codings(com.category))
    source = doc.source(com)
    payload = build(
        PatientQuestionReceived,
        loc,
        source=source,
        question_id=com.id,
        received_via=medium,
        service_line=None if line.value == "unspecified" else line,
        answered=answered,
        provider_id=next((p for r in com.recipient or [] if (p := doc.practitioner(r))), None),
    )
    return [Fact(patient_id, payload, source.source_updated_at)], []


def map_consent(entry: Entry, doc: DocumentContext) -> Mapped:
    consent, loc = entry.resource, entry.loc
    scopes = list(_communication_scopes(consent))
    if not scopes:
        return [], [Problem(loc, "not a consent to be contacted (privacy or access consent)")]
    if consent.status in {"draft", "proposed", "entered-in-error"}:
        return [], [Problem(f"{loc}.status", "only an active, inactive or rejected consent")]
    patient_id = doc.patient(consent.patient, f"{loc}.patient")
    denied = (consent.provision is not None and consent.provision.type == "deny") or (
        "OPTOUT" in codes(consent.policyRule)
    )
    granted = consent.status == "active" and not denied
    source = doc.source(consent)
    facts = [
        Fact(
            patient_id,
            build(
                ConsentChanged,
                loc,
                source=source,
                purpose=purpose,
                channel=channel,
                status=ConsentStatus.granted if granted else ConsentStatus.revoked,
            ),
            source.source_updated_at,
        )
        for purpose, channel in dict.fromkeys(scopes)
    ]
    return facts, []


def _communication_scopes(consent: Any) -> Iterator[tuple[Purpose, Channel | None]]:
    concepts = list(consent.category or [])
    provisions = [consent.provision] if consent.provision is not None else []
    while provisions:
        provision = provisions.pop()
        concepts += [_Concept(p) for p in provision.purpose or []]
        provisions += list(provision.provision or [])
    for concept in concepts:
        for coding in concept.coding or []:
            if coding.system == CONSENT_SYSTEM and coding.code in _CONSENT_CODES:
                yield _CONSENT_CODES[coding.code]
            elif coding.code == "HMARKT":
                yield Purpose.marketing, None


class _Concept:
    def __init__(self, coding: Any) -> None:
        self.coding = [coding]


def map_questionnaire_response(entry: Entry, doc: DocumentContext) -> Mapped:
    qr, loc = entry.resource, entry.loc
    if qr.status not in {"completed", "amended"}:
        return [], [Problem(f"{loc}.status", "only a completed or amended response")]
    answers = {item.linkId.lower(): item.answer or [] for item in _items(qr.item or [])}
    score = _score(answers)
    sentiment = _sentiment(answers, score, qr)
    if sentiment is None:
        return [], [Problem(f"{loc}.item", "no sentiment, score or poor-experience tag")]
    patient_id = doc.patient(qr.subject or qr.source, f"{loc}.subject")
    topics = tuple(
        dict.fromkeys(
            FeedbackTopic(a.valueCoding.code)
            for a in answers.get("topics", []) + answers.get("topic", [])
            if a.valueCoding is not None and a.valueCoding.code in FeedbackTopic.__members__
        )
    )
    source = doc.source(qr)
    payload = build(
        ExperienceFeedbackRecorded,
        loc,
        source=source,
        feedback_id=qr.id,
        visit_id=doc.id_of(qr.encounter, "Encounter"),
        sentiment=sentiment,
        score=score,
        topics=topics,
    )
    return [Fact(patient_id, payload, source.source_updated_at)], []


def _items(items: list[Any]) -> Iterator[Any]:
    for item in items:
        yield item
        yield from _items(item.item or [])
        for answer in item.answer or []:
            yield from _items(answer.item or [])


def _score(answers: dict[str, list[Any]]) -> int | None:
    for key in ("nps", "likelihood-to-recommend", "ltr", "score"):
        for answer in answers.get(key, []):
            value = answer.valueInteger if answer.valueInteger is not None else answer.valueDecimal
            if value is not None and 0 <= float(value) <= 10:
                return round(float(value))
    return None


def _sentiment(answers: dict[str, list[Any]], score: int | None, qr: Any) -> Sentiment | None:
    for answer in answers.get("sentiment", []):
        word = answer.valueCoding.code if answer.valueCoding is not None else answer.valueString
        if (word or "").lower() in Sentiment.__members__:
            return Sentiment((word or "").lower())
    tags = (qr.meta.tag or []) if qr.meta is not None else []
    if any(tag.code == "poor-experience" for tag in tags):
        return Sentiment.poor
    if score is None:
        return None
    return Sentiment.poor if score <= 6 else Sentiment.neutral if score <= 8 else Sentiment.good
