"""Synthetic EHR events for one patient, read like a chart: ``ehr.cancelled("a-1", ...)``.

Every event carries its source record's time (``at``) and version, as ingest would send them.
All identifiers and dates are synthetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

from services.segmenter.domain import ClinicParams, PatientState, decide_batch, evaluate
from shared.events import Envelope, Payload, new_event
from shared.events.common import (
    ClinicalUrgency,
    CodeSystem,
    EhrSource,
    Initiator,
    ServiceLine,
    ServicePerformed,
    SourceSystem,
)
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentKept,
    AppointmentNoShow,
    AppointmentRescheduled,
    CancellationReason,
    ExperienceFeedbackRecorded,
    FollowUpRecommended,
    PatientQuestionReceived,
    PatientUpserted,
    PlanStatus,
    QuestionChannel,
    Sentiment,
    TreatmentPlanUpdated,
    TreatmentRecommended,
    VisitCompleted,
)

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
PARAMS = ClinicParams()


def day(d: date | str) -> date:
    return d if isinstance(d, date) else date.fromisoformat(d)


def at(d: date | str, hour: int = 15) -> datetime:
    x = day(d)
    return datetime(x.year, x.month, x.day, hour, tzinfo=UTC)


class Ehr:
    """Builds the EHR events of one synthetic patient."""

    def __init__(self, patient_key: str = "clinic-t:pt-1") -> None:
        self.patient_key = patient_key
        self.clinic_id = patient_key.partition(":")[0]

    def event(self, payload: Payload, when: datetime | None = None) -> Envelope[Any]:
        source = getattr(payload, "source", None)
        occurred = when or (source.source_updated_at if source else T0)
        return new_event(
            payload, clinic_id=self.clinic_id, patient_key=self.patient_key, occurred_at=occurred
        )

    @staticmethod
    def src(record_id: str, when: datetime, version: int | None = None) -> EhrSource:
        return EhrSource(
            system=SourceSystem.json,
            record_id=record_id,
            source_version=str(version) if version is not None else None,
            source_updated_at=when,
        )

    def _appt(
        self,
        cls: type[Any],
        appt_id: str,
        start: datetime,
        line: ServiceLine,
        when: datetime,
        version: int | None,
        provider: str,
        **extra: Any,
    ) -> Envelope[Any]:
        return self.event(
            cls(
                source=self.src(appt_id, when, version),
                appointment_id=appt_id,
                start=start,
                service_line=line,
                provider_id=provider,
                location_id="loc-1",
                **extra,
            )
        )

    def booked(
        self,
        appt_id: str,
        start: datetime,
        line: ServiceLine,
        when: datetime,
        version: int | None = None,
        provider: str = "dr-1",
        plan_id: str | None = None,
    ) -> Envelope[Any]:
        return self._appt(
            AppointmentBooked,
            appt_id,
            start,
            line,
            when,
            version,
            provider,
            treatment_plan_id=plan_id,
        )

    def rescheduled(
        self,
        appt_id: str,
        start: datetime,
        previous: datetime,
        line: ServiceLine,
        when: datetime,
        version: int | None = None,
    ) -> Envelope[Any]:
        return self._appt(
            AppointmentRescheduled,
            appt_id,
            start,
            line,
            when,
            version,
            "dr-1",
            previous_start=previous,
        )

    def cancelled(
        self,
        appt_id: str,
        start: datetime,
        line: ServiceLine,
        when: datetime,
        version: int | None = None,
        provider: str = "dr-1",
        reason: CancellationReason = CancellationReason.schedule_conflict,
        by: Initiator = Initiator.patient,
        note: str | None = None,
    ) -> Envelope[Any]:
        return self._appt(
            AppointmentCancelled,
            appt_id,
            start,
            line,
            when,
            version,
            provider,
            cancelled_by=by,
            reason_code=reason,
            reason_text=note,
        )

    def no_show(
        self,
        appt_id: str,
        start: datetime,
        line: ServiceLine,
        when: datetime,
        version: int | None = None,
    ) -> Envelope[Any]:
        return self._appt(AppointmentNoShow, appt_id, start, line, when, version, "dr-1")

    def kept(
        self, appt_id: str, start: datetime, line: ServiceLine, version: int | None = None
    ) -> Envelope[Any]:
        return self._appt(AppointmentKept, appt_id, start, line, start, version, "dr-1")

    def visit(
        self,
        visit_id: str,
        when: datetime,
        *lines: ServiceLine,
        appointment_id: str | None = None,
        version: int | None = None,
    ) -> Envelope[Any]:
        return self.event(
            VisitCompleted(
                source=self.src(visit_id, when, version),
                visit_id=visit_id,
                appointment_id=appointment_id,
                completed_at=when,
                provider_id="dr-1",
                location_id="loc-1",
                services=tuple(
                    ServicePerformed(
                        code="99213", system=CodeSystem.cpt, service_line=line, charge_cents=100
                    )
                    for line in lines
                ),
            )
        )

    def follow_up(
        self,
        fu_id: str,
        recommended_on: date | str,
        line: ServiceLine,
        *,
        due_on: date | str | None = None,
        interval_days: int | None = None,
        recurring: bool = False,
        urgency: ClinicalUrgency = ClinicalUrgency.routine,
        visit_id: str | None = "v-0",
        note: str | None = None,
        version: int | None = None,
    ) -> Envelope[Any]:
        on = day(recommended_on)
        return self.event(
            FollowUpRecommended(
                source=self.src(fu_id, at(on), version),
                follow_up_id=fu_id,
                visit_id=visit_id,
                recommended_on=on,
                service_line=line,
                due_on=day(due_on) if due_on else None,
                interval_days=interval_days,
                recurring=recurring,
                urgency=urgency,
                provider_id="dr-1",
                reason_text=note,
            )
        )

    def plan(
        self,
        plan_id: str,
        line: ServiceLine,
        planned: int,
        done: int,
        interval_days: int,
        last_on: date | str | None,
        *,
        status: PlanStatus = PlanStatus.active,
        version: int | None = None,
        when: datetime | None = None,
    ) -> Envelope[Any]:
        last = day(last_on) if last_on else None
        return self.event(
            TreatmentPlanUpdated(
                source=self.src(plan_id, when or at(last or T0.date()), version),
                plan_id=plan_id,
                service_line=line,
                sessions_planned=planned,
                sessions_completed=done,
                interval_days=interval_days,
                status=status,
                last_session_on=last,
                provider_id="dr-1",
            )
        )

    def recommended(
        self,
        rec_id: str,
        visit_id: str,
        on: date | str,
        line: ServiceLine,
        *,
        start_within_days: int | None = None,
        urgency: ClinicalUrgency = ClinicalUrgency.routine,
    ) -> Envelope[Any]:
        return self.event(
            TreatmentRecommended(
                source=self.src(rec_id, at(on)),
                recommendation_id=rec_id,
                visit_id=visit_id,
                recommended_on=day(on),
                service_line=line,
                start_within_days=start_within_days,
                urgency=urgency,
                provider_id="dr-1",
            )
        )

    def question(
        self,
        q_id: str,
        when: datetime,
        *,
        review: bool = True,
        within: int | None = None,
        line: ServiceLine | None = None,
        version: int | None = None,
    ) -> Envelope[Any]:
        return self.event(
            PatientQuestionReceived(
                source=self.src(q_id, when, version),
                question_id=q_id,
                received_via=QuestionChannel.portal,
                service_line=line,
                review_recommended=review,
                review_within_days=within if review else None,
            )
        )

    def feedback(
        self, fb_id: str, when: datetime, sentiment: Sentiment, visit_id: str | None = None
    ) -> Envelope[Any]:
        return self.event(
            ExperienceFeedbackRecorded(
                source=self.src(fb_id, when),
                feedback_id=fb_id,
                visit_id=visit_id,
                sentiment=sentiment,
            )
        )

    def patient(
        self, when: datetime, *, deceased: bool = False, active: bool = True, version: int = 1
    ) -> Envelope[Any]:
        return self.event(
            PatientUpserted(
                source=self.src("p", when, version),
                given_name="Synthetic",
                deceased=deceased,
                active=active,
            )
        )


def run(
    events: list[Envelope[Any]],
    now: datetime,
    params: ClinicParams = PARAMS,
    state: PatientState | None = None,
    *,
    one_by_one: bool = False,
) -> tuple[PatientState, list[Payload]]:
    """Feed events through the pure decision (as one batch, or one event per batch)."""
    key = events[0].patient_key if events else "clinic-t:pt-1"
    state = state or PatientState.new(key)
    if not one_by_one:
        return decide_batch(state, events, now, params)
    out: list[Payload] = []
    for e in events:
        state, emitted = decide_batch(state, [e], now, params)
        out += emitted
    return state, out


def later(
    state: PatientState, now: datetime, params: ClinicParams = PARAMS
) -> tuple[PatientState, list[Payload]]:
    """Time passes: re-evaluate with no new event (what a timer or the sweep does)."""
    return evaluate(state, now, params)


def days(n: int) -> timedelta:
    return timedelta(days=n)


# --- random charts (property tests and the sweep parity test) ---------------------------------

RANDOM_BASE = date(2025, 1, 1)
_LINES = [
    ServiceLine.skin_check,
    ServiceLine.acne,
    ServiceLine.neurotoxin,
    ServiceLine.laser,
    ServiceLine.psoriasis_eczema,
]


def random_chart(rnd: Random, ehr: Ehr) -> list[Envelope[Any]]:
    """A plausible, messy chart: appointments with several versions, visits, plans, follow-ups,
    consults, questions, feedback, sometimes a death. Staff notes start with ``NOTE#``."""

    def when(offset: int, hour: int = 12) -> datetime:
        return at(RANDOM_BASE + timedelta(days=offset), hour)

    def note() -> str:
        return "NOTE# " + "".join(rnd.choice("abcdefgh jk") for _ in range(rnd.randint(0, 20)))

    events: list[Envelope[Any]] = []
    for n in range(rnd.randint(0, 3)):
        line, start, appt_id = rnd.choice(_LINES), when(rnd.randint(0, 420), 9), f"a-{n}"
        for version in range(1, rnd.randint(1, 3) + 1):
            t = start - timedelta(days=rnd.randint(0, 30))
            step = rnd.choice(["book", "cancel", "no_show", "kept"])
            if step == "book":
                events.append(ehr.booked(appt_id, start, line, t, version=version))
            elif step == "cancel":
                reason = rnd.choice([CancellationReason.cost, CancellationReason.entered_in_error])
                events.append(
                    ehr.cancelled(
                        appt_id, start, line, t, version=version, reason=reason, note=note()
                    )
                )
            elif step == "no_show":
                events.append(ehr.no_show(appt_id, start, line, start, version=version))
            else:
                events.append(ehr.kept(appt_id, start, line, version=version))
    for n in range(rnd.randint(0, 3)):
        events.append(ehr.visit(f"v-{n}", when(rnd.randint(0, 420)), rnd.choice(_LINES)))
    for n in range(rnd.randint(0, 2)):
        events.append(
            ehr.follow_up(
                f"f-{n}",
                RANDOM_BASE + timedelta(days=rnd.randint(0, 400)),
                rnd.choice(_LINES),
                interval_days=rnd.randint(20, 200),
                recurring=rnd.random() < 0.5,
                urgency=rnd.choice(list(ClinicalUrgency)),
                note=note(),
                version=rnd.randint(1, 2),
            )
        )
    if rnd.random() < 0.5:
        planned = rnd.randint(2, 6)
        events.append(
            ehr.plan(
                "pl-0",
                rnd.choice(_LINES),
                planned,
                rnd.randint(1, planned),
                rnd.randint(14, 60),
                RANDOM_BASE + timedelta(days=rnd.randint(0, 400)),
                status=rnd.choice(list(PlanStatus)),
                version=rnd.randint(1, 3),
            )
        )
    if rnd.random() < 0.5:
        events.append(
            ehr.recommended(
                "r-0",
                "v-0",
                RANDOM_BASE + timedelta(days=rnd.randint(0, 400)),
                rnd.choice(_LINES),
                urgency=rnd.choice(list(ClinicalUrgency)),
            )
        )
    if rnd.random() < 0.5:
        events.append(ehr.question("q-0", when(rnd.randint(300, 420)), version=rnd.randint(1, 2)))
    for n in range(rnd.randint(0, 2)):
        sentiment = rnd.choice(list(Sentiment))
        events.append(ehr.feedback(f"fb-{n}", when(rnd.randint(300, 420)), sentiment))
    if rnd.random() < 0.3:
        events.append(
            ehr.patient(when(410), deceased=rnd.random() < 0.5, version=rnd.randint(1, 2))
        )
    return events
