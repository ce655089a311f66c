"""Build the synthetic practice: its patients, and their EHR records before and after the start.

Deterministic from the seed, and per patient: every patient's randomness comes from a hash of
(seed, patient id), so a patient's story does not depend on who else is in the practice or in
what order they were generated.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from hashlib import sha256
from random import Random

from shared.events.ehr import FeedbackTopic
from simulator.catalogue import default_clinic, providers_for, service_for_line
from simulator.chart import Chart, visit_record
from simulator.journeys import STORIES, VARIANTS, pick
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Clinic,
    FeedbackRecord,
    Happening,
    Journey,
    Patient,
    Persona,
    Practice,
    Provider,
    VisitRecord,
)

__all__ = ["DEFAULT_MIX", "attends", "build_practice", "service_for_line", "visit_for"]

# A quarter of the practice simply comes as planned; the rest each carry one kind of gap.
DEFAULT_MIX: Mapping[Journey, float] = {
    Journey.regular: 0.25,
    Journey.surveillance: 0.11,
    Journey.canceller: 0.10,
    Journey.follow_up: 0.09,
    Journey.cosmetic: 0.09,
    Journey.chronic: 0.08,
    Journey.lapsed: 0.08,
    Journey.series: 0.07,
    Journey.consult: 0.07,
    Journey.question: 0.06,
}

_P = Persona
_PERSONAS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "usual": ((_P.prompt, 22), (_P.busy, 20), (_P.price_sensitive, 13), (_P.anxious, 12),
              (_P.done, 13), (_P.silent, 20)),
    Journey.regular: ((_P.prompt, 45), (_P.busy, 25), (_P.price_sensitive, 10),
                      (_P.anxious, 10), (_P.done, 5), (_P.silent, 5)),
    Journey.question: ((_P.anxious, 35), (_P.prompt, 20), (_P.busy, 15),
                       (_P.price_sensitive, 10), (_P.done, 8), (_P.silent, 12)),
    Journey.cosmetic: ((_P.prompt, 25), (_P.busy, 20), (_P.price_sensitive, 25),
                       (_P.anxious, 5), (_P.done, 10), (_P.silent, 15)),
}  # fmt: skip
# How a patient treats an appointment booked by text during the simulation:
# (fulfilled, no-show) shares; the rest cancel.
_ATTENDS: Mapping[Persona, tuple[float, float]] = {
    _P.prompt: (0.92, 0.03),
    _P.busy: (0.80, 0.07),
    _P.price_sensitive: (0.85, 0.05),
    _P.anxious: (0.88, 0.04),
    _P.done: (0.75, 0.10),
    _P.silent: (0.80, 0.12),
}
_AGES: Mapping[Journey, tuple[int, int]] = {
    Journey.surveillance: (45, 84),
    Journey.cosmetic: (28, 62),
    Journey.series: (30, 65),
}
_POOR_EXPERIENCE = 0.03
_GOOD_FEEDBACK = 0.05


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FEMALE = _words(
    "Ana Beth Claire Dana Erin Fiona Grace Holly Iris Jenna Kara Laura Megan Nora Olivia Paige "
    "Rachel Sara Tessa Wendy"
)
_MALE = _words(
    "Aaron Ben Caleb Derek Ethan Frank Grant Henry Ian Jonah Kyle Lucas Mason Nolan Owen Peter "
    "Reid Sean Trent Wade"
)
_FEMALE_ES = _words("Alma Beatriz Carmen Dolores Elena Inés Lucía Marisol Paloma Rocío")
_MALE_ES = _words("Alberto Andrés César Diego Emilio Javier Joaquín Mateo Ramón Tomás")
_FAMILY = _words(
    "Abbott Barlow Calloway Dunmore Ellery Fenwick Garrity Holloway Ingram Jessup Kingsley "
    "Lockhart Merriwether Northcott Oakes Pembrook Quill Ransom Sayer Thackeray Underhill Vance "
    "Whitlock Yardley"
)
_FAMILY_ES = _words(
    "Arroyo Barrientos Cervantes Delgadillo Escobedo Fuentes Galván Ibarra Lozano Montalvo "
    "Navarrete Olivares Quintanilla Saldívar"
)
# Texas first, then the neighbours: each area code has a hundred fictional 555-01xx numbers, so
# patients' phones are unique (a patient's reply is matched to them by their number).
_AREA_CODES = _words(
    "512 737 210 726 214 469 972 945 713 281 832 346 817 682 254 325 361 409 430 432 806 830 "
    "903 915 936 940 956 979 405 539 580 918 225 318 337 504 985 505 575 479 501 870 316 620 "
    "785 913 303 719 970 602 480 520 928 615 901 404 770 305 407 617"
)
_DOMAINS = ("example.com", "example.org", "example.net")


def patient_rng(seed: int, *key: str) -> Random:
    """Randomness owned by one entity: the same seed and key give the same draws, in any order."""
    text = "|".join((str(seed), *key))
    return Random(int.from_bytes(sha256(text.encode()).digest()[:8], "big"))


def build_practice(
    seed: int,
    patients: int,
    start: datetime,
    *,
    clinic_id: str = "clinic-demo",
    history_days: int = 730,
    horizon_days: int = 90,
    mix: Mapping[Journey, float] | None = None,
    variants: Mapping[Journey, tuple[tuple[str, int], ...]] | None = None,
    clinic: Clinic | None = None,
) -> Practice:
    """The practice, its ``patients`` and their EHR records up to ``horizon_days`` after
    ``start`` (the planned future, outcomes included), none dated later.

    ``history_days`` bounds the routine history (repeat visits, the odd missed appointment); a
    story's key visits are placed where its need requires (a lapsed patient's last visit ~18
    months back, say), so keep it at a year and a half or more. ``start`` must be aware.
    ``variants`` reweights the services of some journeys (a pilot of cosmetic cancellations
    wants more of them); the rest keep ``VARIANTS``.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    clinic = clinic or default_clinic(clinic_id)
    journeys = _journeys(seed, patients, mix or DEFAULT_MIX)
    people: list[Patient] = []
    timeline: list[tuple[datetime, int, int, Happening]] = []
    for number, journey in enumerate(journeys, start=1):
        patient, happenings = _patient(seed, number, journey, clinic, start,
                                       history_days, horizon_days, variants)  # fmt: skip
        people.append(patient)
        timeline.extend((h.at, number, order, h) for order, h in enumerate(happenings))
    timeline.sort(key=lambda row: row[:3])
    return Practice(clinic, tuple(people), tuple(row[3] for row in timeline), seed, start)


def visit_for(appointment: AppointmentRecord, clinic: Clinic, seed: int = 0) -> VisitRecord:
    """The visit of an appointment booked during the simulation, once the patient came.

    Billing is certain, so ``seed`` changes nothing today; it keeps the engine's call stable if
    a visit ever learns to recommend something.
    """
    return visit_record(appointment, clinic)


def attends(seed: int, patient: Patient, appointment_id: str) -> AppointmentStatus:
    """Whether a patient keeps an appointment booked during the simulation, by persona."""
    kept, noshow = _ATTENDS[patient.persona]
    draw = patient_rng(seed, patient.patient_id, appointment_id, "attends").random()
    if draw < kept:
        return AppointmentStatus.fulfilled
    if draw < kept + noshow:
        return AppointmentStatus.noshow
    return AppointmentStatus.cancelled


def _journeys(seed: int, count: int, mix: Mapping[Journey, float]) -> list[Journey]:
    """Journeys in the mix's proportions, even for a small practice.

    Patient n takes the point frac(offset + n * golden ratio) of the mix's cumulative scale: a
    low-discrepancy sequence, so any first n patients match the mix closely, and a patient's
    journey does not depend on how many patients there are.
    """
    weights = [(j, w) for j, w in mix.items() if w > 0]
    total = sum(w for _, w in weights)
    if not weights or total <= 0:
        raise ValueError("the mix needs at least one journey with a positive weight")
    offset = patient_rng(seed, "journeys").random()
    return [
        _at(weights, (offset + n * 0.6180339887498949) % 1.0 * total) for n in range(1, count + 1)
    ]


def _at(weights: list[tuple[Journey, float]], point: float) -> Journey:
    for journey, weight in weights:
        if point < weight:
            return journey
        point -= weight
    return weights[-1][0]  # rounding at the very top of the scale


def _patient(
    seed: int,
    number: int,
    journey: Journey,
    clinic: Clinic,
    start: datetime,
    history_days: int,
    horizon_days: int,
    variants: Mapping[Journey, tuple[tuple[str, int], ...]] | None = None,
) -> tuple[Patient, list[Happening]]:
    patient_id = f"P-{number:06d}"
    rng = patient_rng(seed, patient_id)
    code = pick(rng, (variants or {}).get(journey) or VARIANTS[journey])
    usual = rng.choice(providers_for(clinic, code))
    patient = _person(rng, number, journey, start.date(), usual)
    chart = Chart(
        patient=patient,
        clinic=clinic,
        rng=rng,
        start=start,
        history_start=start.date() - timedelta(days=history_days),
        end=start + timedelta(days=horizon_days),
        misses_future=journey is not Journey.regular,
    )
    STORIES[journey](chart, code)
    poor = _feedback(chart, patient_rng(seed, patient_id, "feedback"))
    return replace(patient, poor_experience=poor), chart.happenings


def _person(rng: Random, number: int, journey: Journey, today: date, usual: Provider) -> Patient:
    spanish = rng.random() < 0.15
    sex = "female" if rng.random() < (0.8 if journey in _AGES else 0.58) else "male"
    given = rng.choice((_FEMALE_ES if sex == "female" else _MALE_ES) if spanish
                       else (_FEMALE if sex == "female" else _MALE))  # fmt: skip
    family = rng.choice(_FAMILY_ES if spanish else _FAMILY)
    youngest, oldest = _AGES.get(journey, (18, 80))
    birth = today - timedelta(days=rng.randint(youngest * 365 + 1, oldest * 365 + 300))
    area = _AREA_CODES[(number - 1) // 100 % len(_AREA_CODES)]
    mailbox = unicodedata.normalize("NFKD", f"{given}.{family}").encode("ascii", "ignore").decode()
    cosmetic = journey in (Journey.cosmetic, Journey.series)
    persona = pick(rng, _PERSONAS.get(journey, _PERSONAS["usual"]))
    return Patient(
        patient_id=f"P-{number:06d}",
        given_name=given,
        family_name=family,
        birth_date=birth,
        sex=sex,
        phone=f"+1{area}55501{(number - 1) % 100:02d}",
        email=f"{mailbox.lower()}{number}@{rng.choice(_DOMAINS)}",
        language="es" if spanish else "en",
        persona=Persona(persona),
        journey=journey,
        home_location_id=usual.location_id,
        provider_id=usual.provider_id,
        marketing_consent=rng.random() < (0.95 if cosmetic else 0.5),
    )


def _feedback(chart: Chart, rng: Random) -> bool:
    """A few patients answer the survey after a visit; some of them had a poor experience.

    Returns whether this patient's answer was poor. Drawn apart from the story (its own hash)
    so adding survey answers never changes anyone's appointments.
    """
    draw = rng.random()
    if draw >= _POOR_EXPERIENCE + _GOOD_FEEDBACK:
        return False
    recent = chart.start - timedelta(days=300)
    visits = [
        h.record
        for h in chart.happenings
        if isinstance(h.record, VisitRecord) and recent <= h.at <= chart.end - timedelta(days=3)
    ]
    if not visits:
        return False
    visit = rng.choice(visits)
    poor = draw < _POOR_EXPERIENCE
    score = rng.randint(0, 6) if poor else rng.randint(9, 10)
    topics = tuple(rng.sample(list(FeedbackTopic), rng.randint(1, 2))) if poor else ()
    at = visit.end + timedelta(hours=rng.randint(2, 60))
    record = FeedbackRecord(chart.new_id("FB"), chart.patient.patient_id, visit.visit_id, score,
                            tuple(t.value for t in topics), at)  # fmt: skip
    chart.write(at, record)
    return poor
