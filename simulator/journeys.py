"""The stories the generator tells, one per ``Journey``.

Each story writes a patient's chart so that, with the segmenter's default parameters
(docs/segmenter.md), its need surfaces on a chosen day relative to the start: from a few weeks
before it (already due when the simulation begins) to about four fifths into the horizon
(arising while it runs: ten weeks of the default ninety days). Working back from that day is
what makes every segment fill from the first sweep and keep filling during the horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from random import Random

from simulator.chart import Chart, Series
from simulator.model import FollowUp, Journey, QuestionRecord, Recommendation

# The segmenter's defaults the stories aim at (docs/segmenter.md).
CALLS_BACK = 0.15  # cancellers who rebook on their own, days later
FOLLOW_UP_LEAD = 14
SERIES_GRACE = 7
COSMETIC_LEAD = 14
CHRONIC_GRACE = 14
QUESTION_WAIT = 1
LAPSE_DAYS = 548
CONSULT_WAIT = 21

# Which service each journey is about, with how common each variant is.
VARIANTS: dict[Journey, tuple[tuple[str, int], ...]] = {
    Journey.surveillance: (("SKINCHECK", 1),),
    Journey.follow_up: (("BIOPSYFU", 5), ("ACNE", 2), ("ROSACEA", 1), ("GENDERM", 2)),
    Journey.series: (("LASER", 3), ("CHEMPEEL", 2)),
    Journey.canceller: (
        ("SKINCHECK", 3), ("GENDERM", 2), ("ACNE", 2), ("PSORIASIS", 1), ("ROSACEA", 1),
        ("BOTOX", 2), ("CHEMPEEL", 1),
    ),
    Journey.cosmetic: (("BOTOX", 7), ("FILLER", 3)),
    Journey.chronic: (("PSORIASIS", 9), ("ISOTRETINOIN", 5), ("ACNE", 3), ("ROSACEA", 3)),
    Journey.question: (("ACNE", 3), ("PSORIASIS", 3), ("GENDERM", 3), ("ROSACEA", 1)),
    Journey.lapsed: (("GENDERM", 4), ("SKINCHECK", 3), ("ACNE", 2), ("ROSACEA", 1)),
    Journey.consult: (("COSCONSULT", 5), ("MOHS", 2), ("ACNE", 2), ("PSORIASIS", 1)),
    Journey.regular: (
        ("SKINCHECK", 3), ("BOTOX", 2), ("PSORIASIS", 2), ("ACNE", 1), ("GENDERM", 1),
        ("FILLER", 1),
    ),
}  # fmt: skip

# What each consultation recommends, how many sessions, and how soon it should start (days).
_CONSULTS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "COSCONSULT": (("LASER", 5, 30), ("CHEMPEEL", 4, 30), ("FILLER", 1, 30), ("BOTOX", 1, 21)),
    "MOHS": (("MOHSSURGERY", 1, 14),),
    "ACNE": (("ISOTRETINOIN", 6, 30),),
    "PSORIASIS": (("PHOTOTHERAPY", 24, 21),),
}
_REVIEW_DAYS = {"PSORIASIS": 180, "ROSACEA": 180, "ACNE": 90, "ISOTRETINOIN": 30}
_REGULAR_EVERY = {
    "SKINCHECK": 365, "BOTOX": 91, "PSORIASIS": 180, "ACNE": 90, "GENDERM": 180, "FILLER": 270,
}  # fmt: skip


def pick(rng: Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _due(chart: Chart, earliest: int = -20, share: float = 0.8) -> int:
    """The day (from the start) the story's need surfaces: from ``earliest`` (already due when
    the simulation begins) to ``share`` of the horizon (leaving time to answer and come back)."""
    horizon = (chart.end - chart.start).days
    return chart.rng.randint(earliest, max(earliest, int(horizon * share)))


def _back(chart: Chart, last: date, every: int, jitter: int, most: int = 99) -> list[date]:
    """Visit days every ``every`` days up to ``last``, as far back as the history goes."""
    days = [last]
    while len(days) < most:
        earlier = days[0] - timedelta(days=every + chart.rng.randint(-jitter, jitter))
        if earlier < chart.history_start:
            break
        days.insert(0, earlier)
    return days


def surveillance(chart: Chart, code: str) -> None:
    """Yearly (high risk: six-monthly) skin checks on a standing order, the last one overdue."""
    every = 182 if chart.rng.random() < 0.2 else 365
    last = chart.day(_due(chart) - every - CHRONIC_GRACE)
    standing = FollowUp(chart.new_id("F"), code, None, every, recurring=True)
    for i, day in enumerate(_back(chart, last, every, 10)):
        chart.attend(code, day, follow_up=standing if i == 0 else None)


def follow_up(chart: Chart, code: str) -> None:
    """A visit asks the patient back (a biopsy result in 3 months, an acne recheck); unbooked."""
    due = chart.day(_due(chart, -12) + FOLLOW_UP_LEAD)
    if code == "BIOPSYFU":
        origin, interval = "SKINCHECK", 90
    else:
        origin, interval = code, {"ACNE": 56, "ROSACEA": 84}.get(code, 120)
    seen = due - timedelta(days=interval)
    for earlier in _back(chart, seen, 240, 60, most=chart.rng.randint(1, 3))[:-1]:
        chart.attend(origin, earlier)
    by_date = code == "BIOPSYFU"
    chart.attend(
        origin,
        seen,
        follow_up=FollowUp(
            chart.new_id("F"), code, due if by_date else None, None if by_date else interval
        ),
    )


def series(chart: Chart, code: str) -> None:
    """A consult starts a laser or peel series; k of N sessions done, the next never booked."""
    service = chart.clinic.service(code)
    every = service.interval_days or 28
    planned = chart.rng.randint(4, 6) if code == "LASER" else chart.rng.randint(3, 6)
    done = 2 if chart.rng.random() < 0.5 else chart.rng.randint(1, planned - 1)
    last = chart.day(_due(chart) - every - SERIES_GRACE)
    days = [
        last - timedelta(days=every * (done - 1 - i) + chart.rng.randint(0, 3)) for i in range(done)
    ]
    days[-1] = last
    consult = days[0] - timedelta(days=chart.rng.randint(10, 30))
    chart.attend(
        "COSCONSULT", consult, recommendation=Recommendation(chart.new_id("R"), code, planned, 30)
    )
    plan = Series(chart.new_id("C"), code, planned, every)
    booked_at = None
    for day in days:
        visit = chart.attend(code, day, booked_at=booked_at, series=plan)
        booked_at = visit.end  # the next session is booked on the way out
    # ... except after the last one: that is the gap.


def canceller(chart: Chart, code: str) -> None:
    """A patient of the practice cancels (or misses) the next visit; most do not rebook."""
    known = chart.day(_due(chart, -5, 0.83))
    every = chart.rng.randint(90, 200)
    for day in _back(chart, known - timedelta(days=every), every, 20, most=chart.rng.randint(1, 3)):
        chart.attend(code, day)
    if chart.rng.random() < 0.35:
        start = chart.slot(known)
        _, learnt = chart.miss(code, start, chart.booking_time(start), noshow=True)
    else:
        start = chart.slot(known + timedelta(days=chart.rng.randint(1, 10)))
        _, learnt = chart.miss(code, start, chart.booking_time(start), noshow=False)
    if chart.rng.random() < CALLS_BACK:
        # The practice's usual process: some call back on their own (or the front desk reaches
        # them) days later. A pilot's control arm measures exactly this.
        called = learnt + timedelta(days=chart.rng.randint(3, 21), hours=chart.rng.randint(0, 8))
        day = called.date() + timedelta(days=chart.rng.randint(5, 21))
        chart.attend(code, day, booked_at=called)


def cosmetic(chart: Chart, code: str) -> None:
    """Neurotoxin every three months or filler every nine: the last one's upkeep is coming up."""
    keeps = chart.clinic.service(code).maintenance_days or 90
    last = chart.day(_due(chart) + COSMETIC_LEAD - keeps)
    for day in _back(chart, last, keeps + 15, 15):
        chart.attend(code, day)


def chronic(chart: Chart, code: str) -> None:
    """Psoriasis, rosacea or acne reviews, or an isotretinoin course: the last review overdue."""
    every = _REVIEW_DAYS[code]
    last = chart.day(_due(chart) - every - CHRONIC_GRACE)
    course = chart.rng.randint(2, 5) if code == "ISOTRETINOIN" else 99
    days = _back(chart, last, every, 3 if every <= 30 else 10, most=course)
    if code == "ISOTRETINOIN":  # an acne visit recommended the course
        recommended = Recommendation(chart.new_id("R"), code, 6, 30)
        acne_visit = days[0] - timedelta(days=chart.rng.randint(14, 28))
        chart.attend("ACNE", acne_visit, recommendation=recommended)
    standing = FollowUp(chart.new_id("F"), code, None, every, recurring=True)
    for i, day in enumerate(days):
        chart.attend(code, day, follow_up=standing if i == 0 else None)


def question(chart: Chart, code: str) -> None:
    """A patient seen this year asks through the portal; the triage nurse wants to see them."""
    asked = chart.day(_due(chart, -9) - QUESTION_WAIT)
    seen = asked - timedelta(days=chart.rng.randint(20, 200))
    for day in _back(chart, seen, 150, 40, most=chart.rng.randint(1, 3)):
        chart.attend(code, day)
    sent = chart.any_time(asked)
    within = chart.rng.choice((7, 7, 7, 3, 14))
    chart.write(
        sent, QuestionRecord(chart.new_id("Q"), chart.patient.patient_id, code, sent, within)
    )


def lapsed(chart: Chart, code: str) -> None:
    """Two to four visits, the last about eighteen months ago, then nothing."""
    last = chart.day(_due(chart, -30, 0.78) - LAPSE_DAYS)
    visits = chart.rng.randint(2, 4)
    days = _back(chart, last, chart.rng.randint(60, 160), 30, most=visits)
    if len(days) < 2:  # a short history: the earlier visit is still on record
        days.insert(0, last - timedelta(days=chart.rng.randint(60, 120)))
    for day in days:
        chart.attend(code, day)


def consult(chart: Chart, code: str) -> None:
    """A consultation recommends a treatment that is never booked."""
    treatment, sessions, within = _CONSULTS[code][chart.rng.randrange(len(_CONSULTS[code]))]
    seen = chart.day(_due(chart, -21, 0.78) - min(CONSULT_WAIT, within))
    if code == "MOHS":  # found at a skin check, confirmed by the biopsy, sent to the surgeon
        biopsy_review = seen - timedelta(days=chart.rng.randint(7, 14))
        skin_check = biopsy_review - timedelta(days=chart.rng.randint(14, 21))
        result = FollowUp(chart.new_id("F"), "BIOPSYFU", biopsy_review, None)
        chart.attend("SKINCHECK", skin_check, follow_up=result)
        chart.attend("BIOPSYFU", biopsy_review)
    elif chart.rng.random() < 0.5 and code != "COSCONSULT":
        chart.attend(code, seen - timedelta(days=chart.rng.randint(90, 240)))
    recommended = Recommendation(chart.new_id("R"), treatment, sessions, within)
    chart.attend(code, seen, recommendation=recommended)


def regular(chart: Chart, code: str) -> None:
    """Comes as planned, each next visit booked on the way out: no gap, ever."""
    every = _REGULAR_EVERY[code]
    recurring = code in ("SKINCHECK", "PSORIASIS", "ACNE")
    first = chart.day(-chart.rng.randrange(every))
    while first - timedelta(days=every) >= chart.history_start:
        first -= timedelta(days=every)
    horizon_end = chart.end.date()
    day, booked_at, i = first, None, 0
    while True:
        standing = None
        if recurring and i == 0:
            standing = FollowUp(chart.new_id("F"), code, None, every, recurring=True)
        visit = chart.attend(code, day, booked_at=booked_at, follow_up=standing)
        if day > horizon_end:  # booked beyond the horizon: nothing after the booking is written
            return
        booked_at, i = visit.end, i + 1
        day = day + timedelta(days=every + chart.rng.randint(-3, 3))


STORIES: dict[Journey, Callable[[Chart, str], None]] = {
    Journey.surveillance: surveillance,
    Journey.follow_up: follow_up,
    Journey.series: series,
    Journey.canceller: canceller,
    Journey.cosmetic: cosmetic,
    Journey.chronic: chronic,
    Journey.question: question,
    Journey.lapsed: lapsed,
    Journey.consult: consult,
    Journey.regular: regular,
}
