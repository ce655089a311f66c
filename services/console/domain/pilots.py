"""A pilot's four weeks as staff work them: which week is shown, its checklist and the decision
that ends it; week 1's words and escalation route; the preview's verdicts; week 3's objections
with the patients' own words beside them. The checklists, the decisions a week allows and the
figures are the services'; this module only arranges them for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.console.domain.charts import Chart, Group, Row, bar_chart, count_ticks, nice_top
from services.console.domain.words import BARRIERS, INTENTS, say

WEEK_NAMES = {1: "Define", 2: "Launch", 3: "Review", 4: "Compare"}
DECISION_WORDS = {
    "launch": "Launch: enrolment opens when week 2 begins",
    "continue": "Continue as planned",
    "adjust": "Adjust (say what in the note)",
    "stop": "Stop: close the pilot now (holdouts end)",
    "expand": "Expand: the pilot earned a wider roll-out",
}
NEEDS_ADMIN = frozenset({"launch", "stop"})  # the sequencer refuses them to anyone else too
VERDICTS = {
    "held": "In the cohort: held (nobody is messaged before the launch or once the group is full)",
    "enrolled": "In the cohort: enrolled",
    "out": "Not in the cohort",
    "exclusive": "Held: an exclusive pilot runs and this need is outside its cohort",
}
ARMS = {"outreach": "messaged", "holdout": "holdout (usual process)"}
NOTE_MAX = 1000


@dataclass(frozen=True)
class Tab:
    week: int
    name: str
    begun: bool
    current: bool


def tabs(current: int | None) -> list[Tab]:
    """The playbook's four weeks; a week after the fourth is shown as the fourth (compare)."""
    now = current or 0
    return [Tab(w, name, w <= now, w == min(now, 4)) for w, name in WEEK_NAMES.items()]


def week_shown(asked: int | None, current: int | None) -> int:
    if asked in WEEK_NAMES:
        return int(asked)
    return min(max(current or 1, 1), 4)


def phase_of_week(phases: Sequence[Mapping[str, Any]], week: int) -> Mapping[str, Any] | None:
    return next((p for p in phases if int(p.get("week") or 0) == week), None)


@dataclass(frozen=True)
class Choice:
    value: str
    words: str
    allowed: bool  # the signed-in person's role may record it


def decision_choices(allowed: Iterable[str], is_admin: bool, launched: bool) -> list[Choice]:
    """The week's decisions; a launch once launched is not offered (the sequencer refuses it)."""
    return [
        Choice(d, DECISION_WORDS.get(d, d), is_admin or d not in NEEDS_ADMIN)
        for d in allowed
        if not (d == "launch" and launched)
    ]


def read_decision(
    form: Mapping[str, str], phase: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """(the decision for the API, what is wrong with the form or None)."""
    items = [str(c["item"]) for c in phase.get("checklist") or []]
    decision, note = form.get("decision", ""), form.get("note", "").strip()
    body: dict[str, Any] = {
        "week": int(phase["week"]),
        "decision": decision,
        "checklist": [i for i in items if form.get(f"check.{i}") == "on"],
        "note": note,
    }
    allowed = list(phase.get("decisions_allowed") or [])
    if decision not in allowed:
        return body, "Choose the decision that ends the week: " + ", ".join(allowed)
    if len(note) > NOTE_MAX:
        return body, f"The note is {len(note)} characters; at most {NOTE_MAX}"
    return body, None


# --- week 1: the words patients would get, and where their clinical words would go -----------


@dataclass(frozen=True)
class StepWords:
    workflow: str
    title: str
    step: int
    channel: str
    delay_days: float
    does: str
    languages: dict[str, str]  # language -> approved | draft
    words: str | None  # the approved English words

    @property
    def approved(self) -> bool:
        return bool(self.languages) and all(s == "approved" for s in self.languages.values())


def _serves(route: Mapping[str, Any], segment: str, lines: Sequence[str] | None) -> bool:
    if route.get("segment") != segment:
        return False
    serves = route.get("service_lines")
    return serves is None or lines is None or bool(set(serves) & set(lines))


def words_for(
    segment: str,
    service_lines: Sequence[str] | None,
    workflows: Iterable[Mapping[str, Any]],
    templates: Iterable[Mapping[str, Any]],
) -> list[StepWords]:
    """Every step of the workflows that serve the pilot's segment (and its service lines), with
    each language's approval and the English words as they would be sent."""
    status: dict[tuple[str, int, str], dict[str, str]] = {}
    english: dict[tuple[str, int, str], tuple[bool, str]] = {}
    for t in templates:
        if t.get("status") not in ("approved", "draft"):
            continue
        key = (str(t.get("workflow_key")), int(t.get("step") or 0), str(t.get("channel")))
        langs = status.setdefault(key, {})
        lang = str(t.get("language"))
        if langs.get(lang) != "approved":
            langs[lang] = str(t["status"])
        own = t.get("clinic_id") is not None  # the clinic's own words win over the library's
        if t["status"] == "approved" and lang == "en" and (key not in english or own):
            english[key] = (own, str(t.get("body") or ""))
    out = []
    for wf in workflows:
        if not any(_serves(r, segment, service_lines) for r in wf.get("routes") or []):
            continue
        for s in wf.get("steps") or []:
            key = (str(wf["workflow_key"]), int(s["step"]), str(s["channel"]))
            out.append(
                StepWords(
                    workflow=key[0],
                    title=str(wf.get("title") or key[0]),
                    step=key[1],
                    channel=key[2],
                    delay_days=float(s.get("delay_days") or 0),
                    does=str(s.get("does") or ""),
                    languages=dict(sorted(status.get(key, {}).items())),
                    words=english[key][1] if key in english else None,
                )
            )
    return out


ROUTED_CASES = (
    ("red_flag", "urgent", "A red flag (urgent)"),
    ("clinical_question", "high", "A clinical question"),
)


@dataclass(frozen=True)
class RouteView:
    case: str
    rotation: str | None
    chain: tuple[str, ...]  # responders paged in turn
    page_at: str | None


def route_view(case: str, found: Mapping[str, Any] | None) -> RouteView:
    found = found or {}
    chain = tuple(str(t.get("responder_id")) for t in found.get("escalation_chain") or [])
    return RouteView(case, found.get("rotation_id"), chain, found.get("page_at"))


# --- week 3: objections by barrier, with the patients' words --------------------------------


@dataclass(frozen=True)
class Example:
    patient_key: str
    at: str
    intent: str
    words: str | None  # None: the messenger did not give them (shown as unavailable)


@dataclass(frozen=True)
class Objection:
    label: str
    replies: int
    examples: tuple[Example, ...]


def example_patients(groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each patient whose reply is an example, once, in the order they appear."""
    keys = [str(e["patient_key"]) for g in groups for e in g.get("examples") or []]
    return list(dict.fromkeys(keys))


def objections(
    groups: Iterable[Mapping[str, Any]],
    conversations: Mapping[str, Sequence[Mapping[str, Any]] | None],
) -> list[Objection]:
    """The report's objection groups with each example's words from the patient's conversation
    (matched by the reply's message id)."""
    out = []
    for g in groups:
        if g.get("barrier"):
            label = "Barrier: " + say(BARRIERS, str(g["barrier"])).lower()
        else:
            label = say(INTENTS, str(g.get("intent") or ""))
        examples = []
        for e in g.get("examples") or []:
            messages = conversations.get(str(e["patient_key"])) or []
            words = next(
                (m.get("body") for m in messages if m.get("message_id") == e.get("reply_id")),
                None,
            )
            examples.append(
                Example(
                    str(e["patient_key"]),
                    str(e.get("at") or ""),
                    say(INTENTS, str(e.get("intent") or "")),
                    str(words) if words is not None else None,
                )
            )
        out.append(Objection(label, int(g.get("replies") or 0), tuple(examples)))
    return out


def objections_chart(found: Sequence[Objection]) -> Chart:
    top = nice_top(max((o.replies for o in found), default=0), 5)
    rows = tuple(Row(o.label, o.replies, str(o.replies), "bar-objection") for o in found)
    summary = "; ".join(f"{o.label}: {o.replies}" for o in found) or "No objection yet."
    return bar_chart(
        "pilot-objections",
        "Objections by barrier (replies)",
        summary,
        [Group("The messaged arm's replies that object", rows)],
        (0, top),
        count_ticks(top),
    )


# --- weeks 2 and 3: the sequencer's counts per arm and week -----------------------------------

ARM_FIGURES = (
    ("enrolled", "Enrolled"),
    ("messages_sent", "Messages sent"),
    ("replies", "Replies"),
    ("opted_out", "Opted out"),
    ("booked", "Booked"),
    ("care_completed", "Care completed"),
    ("declined", "Declined"),
)


@dataclass(frozen=True)
class ArmWeek:
    week: int
    arm: str
    figures: dict[str, int]
    intents: dict[str, int]
    barriers: dict[str, int]


def arm_weeks(weeks: Iterable[Mapping[str, Any]]) -> list[ArmWeek]:
    out = []
    for w in weeks:
        for arm in ARMS:
            cell = w.get(arm)
            if not cell:
                continue
            out.append(
                ArmWeek(
                    int(w["week"]),
                    ARMS[arm],
                    {k: int(cell.get(k) or 0) for k, _ in ARM_FIGURES},
                    {say(INTENTS, k): int(v) for k, v in (cell.get("reply_intents") or {}).items()},
                    {say(BARRIERS, k): int(v) for k, v in (cell.get("barriers") or {}).items()},
                )
            )
    return out
