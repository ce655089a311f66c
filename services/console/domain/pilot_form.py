"""Week 1's definition as a form: the segment, the cohort filters, the launch group's size, the
holdout share, the length, the previous weeks compared with, and whether the pilot is exclusive;
and the form read back into the sequencer's pilot definition with a precise error per field.
The sequencer validates again (its refusal names the field too)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from services.console.domain.words import SEGMENTS
from shared.events.common import ClinicalUrgency, Initiator, ServiceLine
from shared.events.pilot import MISSED_REASONS, CohortFilters

PILOT_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
RECORD_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

# The filters offered as choices: (API field, label, (value, words) ...).
CHOICES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "service_lines",
        "Service lines",
        tuple(
            (s.value, s.value.replace("_", " "))
            for s in ServiceLine
            if s is not ServiceLine.unspecified
        ),
    ),
    (
        "cancellation_reasons",
        "Cancellation reasons (cancellations and no-shows only)",
        tuple((r, r.replace("_", " ")) for r in sorted(MISSED_REASONS)),
    ),
    ("cancelled_by", "Cancelled by", tuple((i.value, i.value) for i in Initiator)),
    (
        "urgencies",
        "Urgency the plan documented",
        tuple((u.value, u.value) for u in ClinicalUrgency),
    ),
)
ID_LISTS = (("provider_ids", "Providers"), ("location_ids", "Locations"))
NUMBERS: dict[str, tuple[str, int, int]] = {  # field -> (label, lowest, highest)
    "cohort_size": ("Launch group size", 1, 1_000_000),
    "holdout_percent": ("Holdout share (%)", 0, 90),
    "days": ("Days (the define week included)", 8, 365),
    "baseline_days": ("Previous weeks compared with (days)", 7, 365),
    "min_age_days": ("Need at least this many days old", 0, 3650),
    "max_age_days": ("Need at most this many days old", 0, 3650),
}
OPTIONAL_NUMBERS = frozenset({"min_age_days", "max_age_days"})
DEFAULTS = {"holdout_percent": "20", "days": "30", "baseline_days": "28", "cohort_size": "40"}


@dataclass
class PilotForm:
    """What the form shows: text values by field and the ticked choices by filter."""

    text: dict[str, str] = field(default_factory=lambda: dict(DEFAULTS))
    ticked: dict[str, set[str]] = field(default_factory=dict)
    exclusive: bool = False

    def is_ticked(self, name: str, value: str) -> bool:
        return value in self.ticked.get(name, set())


def form_of(pilot: Mapping[str, Any] | None) -> PilotForm:
    """The form for a new pilot (None) or filled from a draft."""
    form = PilotForm()
    if pilot is None:
        form.text["segment"] = "cancelled_not_rescheduled"
        return form
    cohort = pilot.get("cohort") or {}
    form.text.update(
        name=str(pilot.get("name") or ""),
        pilot_id=str(pilot.get("pilot_id") or ""),
        segment=str(pilot.get("segment") or ""),
        cohort_size=str(pilot.get("cohort_size") or ""),
        holdout_percent=f"{round(float(pilot.get('holdout_share') or 0) * 100):d}",
        days=str(pilot.get("days") or ""),
        baseline_days=str(pilot.get("baseline_days") or ""),
    )
    for name, _label in ID_LISTS:
        form.text[name] = ", ".join(cohort.get(name) or [])
    for name in OPTIONAL_NUMBERS:
        form.text[name] = "" if cohort.get(name) is None else str(cohort[name])
    form.ticked = {name: set(cohort.get(name) or []) for name, _l, _c in CHOICES}
    form.exclusive = bool(pilot.get("exclusive"))
    return form


def read_form(
    submitted: Mapping[str, str], *, new: bool
) -> tuple[dict[str, Any], PilotForm, dict[str, str]]:
    """(the definition for the API, the form as submitted, errors by field)."""
    form = PilotForm(text={}, exclusive=submitted.get("exclusive") == "on")
    errors: dict[str, str] = {}
    for name in ("name", "pilot_id", "segment", *NUMBERS, *(n for n, _ in ID_LISTS)):
        form.text[name] = (submitted.get(name) or "").strip()
    for name, _label, choices in CHOICES:
        form.ticked[name] = {v for v, _ in choices if submitted.get(f"c.{name}.{v}") == "on"}

    name = form.text["name"]
    if not 1 <= len(name) <= 120:
        errors["name"] = "Name: 1 to 120 characters (for the team; never a patient's name)"
    if form.text["segment"] not in SEGMENTS:
        errors["segment"] = "Segment: choose one of the list"
    pilot_id = form.text["pilot_id"]
    if new and pilot_id and not PILOT_ID.fullmatch(pilot_id):
        errors["pilot_id"] = (
            "Short id: up to 64 lower-case letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    numbers: dict[str, int | None] = {}
    for key, (label, low, high) in NUMBERS.items():
        raw = form.text[key]
        if not raw and key in OPTIONAL_NUMBERS:
            numbers[key] = None
            continue
        try:
            value = int(raw)
        except ValueError:
            errors[key] = f"{label}: a whole number from {low} to {high}"
            continue
        if not low <= value <= high:
            errors[key] = f"{label}: from {low} to {high}"
        numbers[key] = value

    cohort: dict[str, Any] = {k: sorted(v) for k, v in form.ticked.items() if v}
    for key, label in ID_LISTS:
        ids = [i for i in re.split(r"[,\s]+", form.text[key]) if i]
        bad = [i for i in ids if not RECORD_ID.fullmatch(i)]
        if bad:
            errors[key] = (
                f"{label}: ids of letters, digits, '.', '_', ':' or '-', separated by commas"
            )
        elif ids:
            cohort[key] = ids
    for key in OPTIONAL_NUMBERS:
        if numbers.get(key) is not None:
            cohort[key] = numbers[key]
    if not errors:
        try:
            CohortFilters.model_validate(cohort)
        except ValidationError as exc:
            errors["cohort"] = "Cohort: " + "; ".join(
                str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
            )
    definition: dict[str, Any] = {
        "name": name,
        "segment": form.text["segment"],
        "cohort": cohort,
        "cohort_size": numbers.get("cohort_size"),
        "holdout_share": (numbers.get("holdout_percent") or 0) / 100,
        "days": numbers.get("days"),
        "baseline_days": numbers.get("baseline_days"),
        "exclusive": form.exclusive,
    }
    if new and pilot_id:
        definition["pilot_id"] = pilot_id
    return definition, form, errors


FIELD_OF = {"holdout_share": "holdout_percent"}


def refusal_by_field(detail: Any) -> dict[str, str]:
    """The sequencer's refusal (a sentence, or the issues of an invalid request, each with its
    field path such as ``body.cohort.service_lines[0]``) by form field."""
    if not isinstance(detail, list):
        return {"": str(detail)}
    out: dict[str, str] = {}
    for d in detail:
        if not isinstance(d, dict):
            continue
        path = str(d.get("where", "")).removeprefix("body").lstrip(".")
        where = [p for p in re.sub(r"\[\d+\]", "", path).split(".") if p]
        key = where[-1] if where else ""
        key = FIELD_OF.get(key, key)
        if where[:1] == ["cohort"] and key not in NUMBERS and key not in dict(ID_LISTS):
            key = "cohort"
        out[key] = f"{path or 'pilot'}: {d.get('problem', '')}"
    return out
