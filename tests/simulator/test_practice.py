"""The synthetic practice: deterministic, plausible, fictional, and shaped as the EHR writes."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.mapping.service_lines import ServiceLineTable
from shared.events.common import CodeSystem, ServiceLine
from simulator.catalogue import default_clinic, providers_for, service_for_line
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    FeedbackRecord,
    Journey,
    Persona,
    Practice,
    QuestionRecord,
    VisitRecord,
)
from simulator.practice import DEFAULT_MIX, attends, build_practice, visit_for

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HORIZON = timedelta(days=90)


@pytest.fixture(scope="module")
def practice() -> Practice:
    return build_practice(2026, 2000, START)


def _final_appointments(practice: Practice) -> dict[str, AppointmentRecord]:
    latest: dict[str, AppointmentRecord] = {}
    for happening in practice.timeline:
        if isinstance(happening.record, AppointmentRecord):
            latest[happening.record.appointment_id] = happening.record
    return latest


def test_the_same_seed_builds_the_same_practice() -> None:
    first, second = build_practice(5, 150, START), build_practice(5, 150, START)

    assert first.timeline == second.timeline
    assert first.patients == second.patients


def test_a_different_seed_builds_a_different_practice() -> None:
    first, second = build_practice(5, 150, START), build_practice(6, 150, START)

    assert first.timeline != second.timeline
    assert [p.given_name for p in first.patients] != [p.given_name for p in second.patients]


def test_a_patients_story_does_not_depend_on_how_many_patients_the_practice_has() -> None:
    small, large = build_practice(9, 40, START), build_practice(9, 400, START)

    def story(practice: Practice, patient_id: str) -> list[object]:
        return [h for h in practice.timeline if h.record.patient_id == patient_id]

    assert small.patient("P-000017") == large.patient("P-000017")
    assert story(small, "P-000017") == story(large, "P-000017")


def test_between_15_and_25_percent_of_appointments_are_cancelled_or_missed(
    practice: Practice,
) -> None:
    end = START + HORIZON
    reached = [a for a in _final_appointments(practice).values() if a.start <= end]
    missed = [
        a for a in reached if a.status in (AppointmentStatus.cancelled, AppointmentStatus.noshow)
    ]

    assert len(reached) > 5_000
    assert 0.15 <= len(missed) / len(reached) <= 0.25
    assert any(a.status is AppointmentStatus.noshow for a in missed)


def test_every_appointment_that_reached_its_date_has_an_outcome(practice: Practice) -> None:
    end = START + HORIZON
    undecided = [
        a
        for a in _final_appointments(practice).values()
        if a.start + timedelta(minutes=a.minutes) < end and a.status is AppointmentStatus.booked
    ]

    assert undecided == []


def test_the_default_mix_gives_every_journey_to_a_few_hundred_patients() -> None:
    patients = build_practice(3, 300, START).patients
    counts = Counter(p.journey for p in patients)

    assert set(counts) == set(Journey)
    assert counts[Journey.regular] == pytest.approx(300 * DEFAULT_MIX[Journey.regular], abs=6)


def test_a_custom_mix_gives_only_the_journeys_it_names() -> None:
    practice = build_practice(3, 100, START, mix={Journey.canceller: 1, Journey.lapsed: 3})
    counts = Counter(p.journey for p in practice.patients)

    assert set(counts) == {Journey.canceller, Journey.lapsed}
    assert counts[Journey.lapsed] == pytest.approx(75, abs=3)


def test_every_catalogue_code_maps_to_its_service_line_in_ingest() -> None:
    table = ServiceLineTable()

    for service in default_clinic().catalogue:
        assert table.lookup(CodeSystem.local, service.code) is service.service_line, service.code
        # the claim's CPT names the same care, or is an office visit (general dermatology)
        assert table.lookup(CodeSystem.cpt, service.cpt) in (
            service.service_line,
            ServiceLine.general_dermatology,
        ), service.cpt


def test_every_service_has_a_provider_and_every_provider_works_at_a_known_location() -> None:
    clinic = default_clinic()
    locations = {loc.location_id for loc in clinic.locations}

    assert all(providers_for(clinic, s.code) for s in clinic.catalogue)
    assert all(p.location_id in locations for p in clinic.providers)
    assert {s.code for s in clinic.catalogue} >= {
        c for p in clinic.providers for c in p.service_codes
    }


def test_a_booking_by_text_for_a_service_line_books_the_treatment_not_its_consultation() -> None:
    clinic = default_clinic()

    assert service_for_line(clinic, ServiceLine.mohs).code == "MOHSSURGERY"
    assert service_for_line(clinic, "neurotoxin").code == "BOTOX"
    assert service_for_line(clinic, ServiceLine.unspecified).code == "GENDERM"
    assert service_for_line(clinic, None).code == "GENDERM"


def test_nothing_happens_after_the_horizon_and_the_timeline_is_in_order(practice: Practice) -> None:
    times = [h.at for h in practice.timeline]

    assert max(times) <= START + HORIZON
    assert times == sorted(times)
    assert any(t > START for t in times)  # the planned future is there too


def test_each_change_of_an_appointment_is_a_new_version(practice: Practice) -> None:
    versions: dict[str, list[AppointmentRecord]] = {}
    for happening in practice.timeline:
        if isinstance(happening.record, AppointmentRecord):
            assert happening.via == "hl7"
            versions.setdefault(happening.record.appointment_id, []).append(happening.record)

    for records in versions.values():
        assert [r.version for r in records] == list(range(1, len(records) + 1))
        assert records[0].status is AppointmentStatus.booked
        assert all(r.status is not AppointmentStatus.booked for r in records[1:])


def test_a_visit_follows_each_fulfilled_appointment_with_its_catalogue_price(
    practice: Practice,
) -> None:
    appointments = _final_appointments(practice)
    visits = [h.record for h in practice.timeline if isinstance(h.record, VisitRecord)]

    assert visits
    for visit in visits:
        assert visit.appointment_id is not None
        appointment = appointments[visit.appointment_id]
        assert appointment.status is AppointmentStatus.fulfilled
        assert visit.start == appointment.start
        price = practice.clinic.service(appointment.service_code).price_cents
        assert [c.amount_cents for c in visit.charges] == [price]


def test_a_series_visit_resends_its_plan_with_the_sessions_done_so_far(practice: Practice) -> None:
    plans: dict[str, list[int]] = {}
    for happening in practice.timeline:
        record = happening.record
        if isinstance(record, VisitRecord) and record.plan is not None:
            assert record.plan.done_visit_ids[-1] == record.visit_id
            plans.setdefault(record.plan.plan_id, []).append(len(record.plan.done_visit_ids))

    assert plans
    assert all(done == list(range(1, len(done) + 1)) for done in plans.values())


def test_ids_are_readable_and_unique_in_the_practice(practice: Practice) -> None:
    ids = [p.patient_id for p in practice.patients]
    records: dict[str, set[object]] = {}
    for h in practice.timeline:
        record = h.record
        if isinstance(record, AppointmentRecord):
            key = record.appointment_id
        elif isinstance(record, VisitRecord):
            key = record.visit_id
        elif isinstance(record, QuestionRecord):
            key = record.question_id
        else:
            key = record.feedback_id
        records.setdefault(key, set()).add(record.patient_id)

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"P-\d{6}", i) for i in ids)
    assert all(len(owners) == 1 for owners in records.values())
    assert all(re.fullmatch(r"(A|V|Q|FB)-\d{6}-\d{2}", key) for key in records)


def test_contacts_are_fictional_and_each_phone_belongs_to_one_patient(practice: Practice) -> None:
    phones = [p.phone for p in practice.patients]

    assert all(re.fullmatch(r"\+1[2-9]\d{2}55501\d{2}", phone) for phone in phones)
    assert all(
        re.fullmatch(r"[a-z.]+\d+@example\.(com|org|net)", p.email) for p in practice.patients
    )
    assert len(set(phones)) == len(phones)


def test_a_few_patients_record_a_poor_experience_and_are_marked_for_it(practice: Practice) -> None:
    poor = {
        h.record.patient_id
        for h in practice.timeline
        if isinstance(h.record, FeedbackRecord) and h.record.score <= 6
    }
    marked = {p.patient_id for p in practice.patients if p.poor_experience}

    assert poor == marked
    assert 0.01 <= len(marked) / len(practice.patients) <= 0.05


def test_questions_come_only_from_question_patients(practice: Practice) -> None:
    askers = {
        h.record.patient_id for h in practice.timeline if isinstance(h.record, QuestionRecord)
    }

    assert askers
    assert {practice.patient(a).journey for a in askers} == {Journey.question}


def test_regular_patients_keep_every_appointment_after_the_start(practice: Practice) -> None:
    regular = {p.patient_id for p in practice.patients if p.journey is Journey.regular}
    future = [
        a
        for a in _final_appointments(practice).values()
        if a.patient_id in regular and a.start > START and a.status is not AppointmentStatus.booked
    ]

    assert future
    assert all(a.status is AppointmentStatus.fulfilled for a in future)


def test_attendance_of_a_booking_by_text_is_fixed_by_the_seed_and_follows_the_persona(
    practice: Practice,
) -> None:
    prompt = next(p for p in practice.patients if p.persona is Persona.prompt)
    silent = next(p for p in practice.patients if p.persona is Persona.silent)

    def kept(patient: object) -> int:
        outcomes = [attends(1, patient, f"SIM-{n}") for n in range(2000)]  # type: ignore[arg-type]
        return outcomes.count(AppointmentStatus.fulfilled)

    assert attends(1, prompt, "SIM-7") == attends(1, prompt, "SIM-7")
    assert kept(prompt) > kept(silent)


def test_a_visit_for_a_booking_by_text_bills_the_service_and_is_named_after_it() -> None:
    clinic = default_clinic()
    appointment = AppointmentRecord(
        "A-000042-09", "P-000042", "BOTOX", "np-marchetti", "loc-downtown",
        START, 30, AppointmentStatus.fulfilled, 2,
    )  # fmt: skip

    visit = visit_for(appointment, clinic, 7)

    assert visit.visit_id == "V-000042-09"
    assert visit.end == START + timedelta(minutes=30)
    assert [(c.cpt, c.amount_cents) for c in visit.charges] == [("64612", 450_00)]


def test_a_practice_of_five_thousand_patients_builds() -> None:
    practice = build_practice(1, 5000, START)

    assert len(practice.patients) == 5000
    assert len(practice.timeline) > 40_000


def test_a_start_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_practice(1, 5, datetime(2026, 3, 2, 14))
