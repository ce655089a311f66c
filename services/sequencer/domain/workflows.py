"""Workflows: one per segment and service line, each in the practice playbook's four-step shape.

1. a relevant reminder (the documented reason, the next step, an easy reply);
2. remove friction (booking options, or "would you prefer a later reminder?");
3. understand the barrier (one short question: timing, cost, uncertainty, a concern);
4. close respectfully (a way to pause or decline; then stop).

A step's ``delay`` counts from the previous step's send (step 1: from when the need is due), in
local calendar days, so a step keeps its local hour across daylight-saving changes. Its template
is always ``<workflow_key>.<step>`` (the messenger's library holds sms and e-mail words for each).
A step's urgency is a ceiling: the sent urgency is the lower of it and the documented one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.outreach import Tone

MAX_STEPS = 4
SMS, EMAIL = Channel.sms, Channel.email
ROUTINE, SOON, URGENT = ClinicalUrgency.routine, ClinicalUrgency.soon, ClinicalUrgency.urgent

PLAYBOOK = {
    1: "a relevant reminder: the documented reason, the next step, an easy reply",
    2: "remove friction: booking options, or a later reminder",
    3: "understand the barrier: one short question",
    4: "close respectfully: a way to pause or decline, then stop",
}
RECOVERY_PLAYBOOK = {
    1: "apologise and listen: reply here or call; no booking push",
    2: "offer a call at a time that suits the patient",
    3: "ask what could be done better",
    4: "thank the patient and stop",
}


@dataclass(frozen=True)
class WorkflowStep:
    step: int
    delay: timedelta
    channel: Channel
    fallback: Channel | None
    tone: Tone
    urgency: ClinicalUrgency  # ceiling
    marketing: bool
    template_key: str

    def urgency_for(self, documented: ClinicalUrgency) -> ClinicalUrgency:
        return documented.capped_at(self.urgency)

    def purpose_for(self, needs_marketing_consent: bool) -> Purpose:
        return Purpose.marketing if self.marketing or needs_marketing_consent else Purpose.care


@dataclass(frozen=True)
class Route:
    """Which eligibilities a workflow serves: a segment, optionally only some service lines."""

    segment: Segment
    service_lines: frozenset[ServiceLine] | None = None  # None: every line of the segment

    def matches(self, segment: Segment, line: ServiceLine) -> bool:
        return segment is self.segment and (
            self.service_lines is None or line in self.service_lines
        )

    @property
    def specificity(self) -> int:
        return 0 if self.service_lines is None else 1


@dataclass(frozen=True)
class Workflow:
    key: str
    title: str
    steps: tuple[WorkflowStep, ...]
    routes: tuple[Route, ...] = ()
    description: str = ""
    custom: bool = False  # defined or changed by the clinic through the ops API
    playbook: Mapping[int, str] = field(default_factory=lambda: PLAYBOOK)

    def __post_init__(self) -> None:
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise ValueError(f"a workflow has 1 to {MAX_STEPS} steps")
        for n, s in enumerate(self.steps, start=1):
            if s.step != n:
                raise ValueError("steps are numbered 1, 2, ... in order")
            if s.template_key != f"{self.key}.{n}":
                raise ValueError("a step's template key is '<workflow_key>.<step>'")
            if s.fallback is not None and s.fallback is s.channel:
                raise ValueError("a step's fallback channel must differ from its channel")
            if s.delay < timedelta(0):
                raise ValueError("a step's delay cannot be negative")

    @property
    def marketing(self) -> bool:
        return any(s.marketing for s in self.steps)

    @property
    def tone(self) -> Tone:
        return self.steps[0].tone

    def step(self, n: int) -> WorkflowStep:
        return self.steps[n - 1]


def _wf(
    key: str,
    title: str,
    tone: Tone,
    delays_days: tuple[float, ...],
    channels: tuple[tuple[Channel, Channel | None], ...],
    routes: Iterable[Route],
    *,
    first_urgency: ClinicalUrgency = URGENT,
    marketing: bool = False,
    description: str = "",
    playbook: Mapping[int, str] = PLAYBOOK,
) -> Workflow:
    steps = tuple(
        WorkflowStep(
            step=n,
            delay=timedelta(days=d),
            channel=ch,
            fallback=fb,
            tone=tone,
            # Only the first reminder may carry the documented urgency; the rest are routine.
            urgency=first_urgency if n == 1 else ROUTINE,
            marketing=marketing,
            template_key=f"{key}.{n}",
        )
        for n, (d, (ch, fb)) in enumerate(zip(delays_days, channels, strict=True), start=1)
    )
    return Workflow(key, title, steps, tuple(routes), description, playbook=playbook)


SKIN_CANCER_LINES = frozenset(
    {
        ServiceLine.skin_check,
        ServiceLine.biopsy_follow_up,
        ServiceLine.skin_cancer_surgery,
        ServiceLine.mohs,
    }
)
ACNE_LINES = frozenset({ServiceLine.acne, ServiceLine.isotretinoin})
S = Segment
SMS_FIRST = ((SMS, EMAIL), (EMAIL, SMS), (SMS, EMAIL), (SMS, EMAIL))
EMAIL_FIRST = ((EMAIL, SMS), (EMAIL, SMS), (EMAIL, SMS), (EMAIL, None))

DEFAULT_WORKFLOWS: tuple[Workflow, ...] = (
    _wf(
        "skin_cancer_surveillance",
        "Skin-cancer surveillance",
        Tone.clinical,
        (0, 3, 4, 5),
        SMS_FIRST,
        [
            Route(S.follow_up_not_booked, SKIN_CANCER_LINES),
            Route(S.chronic_review_overdue, SKIN_CANCER_LINES),
            Route(S.question_no_review, SKIN_CANCER_LINES),
        ],
        description="Scheduled skin checks and post-biopsy or post-surgery surveillance.",
    ),
    _wf(
        "chronic_review",
        "Chronic-condition review",
        Tone.clinical,
        (0, 4, 5, 7),
        SMS_FIRST,
        [Route(S.chronic_review_overdue)],
        description="Psoriasis, eczema, rosacea and other conditions with a review interval.",
    ),
    _wf(
        "follow_up",
        "Follow-up",
        Tone.supportive,
        (0, 4, 5, 7),
        SMS_FIRST,
        [Route(S.follow_up_not_booked), Route(S.question_no_review)],
        description="A follow-up the clinician recommended (or a review after a portal question).",
    ),
    _wf(
        "treatment_series",
        "Treatment series",
        Tone.supportive,
        (0, 3, 5, 6),
        SMS_FIRST,
        [Route(S.series_incomplete)],
        description="The next session of a multi-session plan (laser, phototherapy, peels).",
    ),
    _wf(
        "acne_follow_up",
        "Acne follow-up",
        Tone.supportive,
        (0, 3, 4, 5),
        SMS_FIRST,
        [
            Route(S.follow_up_not_booked, ACNE_LINES),
            Route(S.chronic_review_overdue, ACNE_LINES),
            Route(S.question_no_review, ACNE_LINES),
        ],
        description="Acne and isotretinoin check-ins, which lapse easily between visits.",
    ),
    _wf(
        "cosmetic_maintenance",
        "Cosmetic maintenance",
        Tone.friendly,
        (0, 5, 7, 10),
        EMAIL_FIRST,
        [Route(S.cosmetic_maintenance_due)],
        first_urgency=ROUTINE,
        marketing=True,
        description="Elective maintenance (neurotoxin, filler): marketing consent required.",
    ),
    _wf(
        "consult_not_started",
        "Consult not started",
        Tone.supportive,
        (0, 4, 6, 7),
        SMS_FIRST,
        [Route(S.consult_no_treatment)],
        description="A treatment recommended at a consultation that has not started.",
    ),
    _wf(
        "cancellation_recovery",
        "Cancellation recovery",
        Tone.supportive,
        (0, 2, 4, 5),
        SMS_FIRST,
        [Route(S.cancelled_not_rescheduled)],
        description=(
            "Step 1 goes as soon as the cancellation is due (inside allowed hours): it confirms "
            "the cancellation, offers the same provider and service, asks about a question."
        ),
    ),
    _wf(
        "lapsed_patient",
        "Lapsed patient",
        Tone.supportive,
        (0, 7, 7, 7),
        EMAIL_FIRST,
        [Route(S.lapsed_patient)],
        first_urgency=ROUTINE,
        description="Two or more visits before, none for the period: unhurried, e-mail first.",
    ),
    _wf(
        "service_recovery",
        "Service recovery",
        Tone.supportive,
        (0, 3, 5, 7),
        SMS_FIRST,
        [],  # never routed from a segment: it replaces a sequence after a poor experience
        first_urgency=ROUTINE,
        description=(
            "After a recorded poor experience: a person calls first; these messages apologise "
            "and listen, never push a booking, and stop when the case is resolved."
        ),
        playbook=RECOVERY_PLAYBOOK,
    ),
)
SERVICE_RECOVERY = "service_recovery"


class Catalogue:
    """The workflows in force for one clinic: the defaults, then the clinic's own."""

    def __init__(self, workflows: Iterable[Workflow]) -> None:
        self.by_key: dict[str, Workflow] = {}
        for wf in workflows:
            self.by_key[wf.key] = wf

    @classmethod
    def default(cls) -> Catalogue:
        return cls(DEFAULT_WORKFLOWS)

    def with_overrides(self, overrides: Iterable[Workflow]) -> Catalogue:
        return Catalogue([*self.by_key.values(), *overrides])

    def get(self, key: str) -> Workflow | None:
        return self.by_key.get(key)

    def route(self, segment: Segment, line: ServiceLine) -> Workflow | None:
        """The most specific workflow for this segment and service line (a clinic's own first)."""
        best: tuple[int, int, str] | None = None
        chosen: Workflow | None = None
        for wf in self.by_key.values():
            for route in wf.routes:
                if route.matches(segment, line):
                    rank = (route.specificity, int(wf.custom), wf.key)
                    if best is None or rank[:2] > best[:2]:
                        best, chosen = rank, wf
        return chosen
