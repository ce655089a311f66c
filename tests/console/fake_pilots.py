"""The sequencer's pilot API in memory, for the console's route tests: the sequencer's own pure
rules (start, launch, close, each week's checklist and decisions, the pilot's view) over a
dictionary, with its refusals (role, clinic, draft-only changes, one running pilot per segment,
a week that has not begun). ``test_console_pilot_contracts.py`` holds it to the real API."""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.console.adapters.base import ApiError
from services.console.adapters.pilots import PilotsApi
from services.sequencer.api.pilots import PilotChange, PilotIn, view
from services.sequencer.domain import pilot_phases
from services.sequencer.domain import pilots as rules
from services.sequencer.domain.pilots import Pilot, PilotStatus
from shared.errors import validation_issues

NOT_FOUND = "no such pilot in the clinics this credential covers"
VERDICTS = ("enrolled", "held", "out", "exclusive")


def _who(token: str) -> tuple[str, str, set[str] | None]:
    _, subject, role, clinics = token.split(":", 3)
    return subject, role, None if clinics == "*" else set(clinics.split(","))


def _invalid(exc: ValidationError) -> ApiError:
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    return ApiError("sequencer", 422, [i.model_dump() for i in validation_issues(errors)])


class FakePilots(PilotsApi):
    def __init__(self, world: Any) -> None:
        self.w = world

    def _now(self) -> datetime:
        now: datetime = self.w.now
        return now

    def _find(self, token: str, pilot_id: str, role: str = "viewer") -> Pilot:
        found: Pilot | None = self.w.pilot_store.get(pilot_id)
        clinics = _who(token)[2]
        if found is None or (clinics is not None and found.clinic_id not in clinics):
            raise ApiError("sequencer", 404, NOT_FOUND)
        self.w.allow("sequencer", token, found.clinic_id, role)
        return found

    def _arms(self, pilot_id: str) -> dict[str, int]:
        counts = self.w.pilot_arms.get(pilot_id, {})
        return {"outreach": counts.get("outreach", 0), "holdout": counts.get("holdout", 0)}

    async def pilots(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        self.w.allow("sequencer", token, clinic_id)
        found = [p for p in self.w.pilot_store.values() if p.clinic_id == clinic_id]
        return [view(p, self._now()) for p in found]

    async def pilot(self, token: str, pilot_id: str) -> dict[str, Any]:
        pilot = self._find(token, pilot_id)
        return {**view(pilot, self._now()), "arms": self._arms(pilot_id)}

    async def define(self, token: str, definition: dict[str, Any]) -> dict[str, Any]:
        try:
            body = PilotIn.model_validate(definition)
        except ValidationError as exc:
            raise _invalid(exc) from None
        self.w.allow("sequencer", token, body.clinic_id, "admin")
        pilot_id = body.pilot_id or f"pilot-{uuid.uuid4().hex[:12]}"
        if pilot_id in self.w.pilot_store:
            raise ApiError("sequencer", 409, "a pilot with this id already exists")
        fields = body.model_dump(exclude={"pilot_id"})
        fields["cohort"] = body.cohort
        pilot = Pilot(pilot_id=pilot_id, **fields)
        self.w.pilot_store[pilot_id] = pilot
        self.w.calls.append(("define", pilot_id))
        return view(pilot)

    async def change(self, token: str, pilot_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        pilot = self._find(token, pilot_id, "admin")
        try:
            body = PilotChange.model_validate(changes)
        except ValidationError as exc:
            raise _invalid(exc) from None
        if pilot.status is not PilotStatus.draft:
            raise ApiError("sequencer", 409, "only a draft pilot can be changed")
        given = {k: getattr(body, k) for k in body.model_fields_set}
        pilot = replace(pilot, **{k: v for k, v in given.items() if v is not None})
        self.w.pilot_store[pilot_id] = pilot
        self.w.calls.append(("change", pilot_id))
        return view(pilot)

    async def delete(self, token: str, pilot_id: str) -> None:
        pilot = self._find(token, pilot_id, "admin")
        if pilot.status is not PilotStatus.draft:
            raise ApiError(
                "sequencer", 409, "only a draft pilot can be deleted; close a running one"
            )
        del self.w.pilot_store[pilot_id]
        self.w.calls.append(("delete", pilot_id))

    async def start(self, token: str, pilot_id: str) -> dict[str, Any]:
        pilot = self._find(token, pilot_id, "admin")
        running = [
            p
            for p in self.w.pilot_store.values()
            if p.clinic_id == pilot.clinic_id and p.status is PilotStatus.running
        ]
        if any(p.segment is pilot.segment for p in running if p.pilot_id != pilot_id):
            raise ApiError("sequencer", 409, "another pilot is already running for this segment")
        try:
            pilot = rules.start(pilot, self._now())
        except ValueError as exc:
            raise ApiError("sequencer", 409, str(exc)) from None
        self.w.pilot_store[pilot_id] = pilot
        self.w.calls.append(("start", pilot_id))
        return view(pilot, self._now())

    async def close(self, token: str, pilot_id: str) -> dict[str, Any]:
        pilot = self._find(token, pilot_id, "admin")
        try:
            pilot = rules.close(pilot, self._now())
        except ValueError as exc:
            raise ApiError("sequencer", 409, str(exc)) from None
        self.w.pilot_store[pilot_id] = pilot
        self.w.calls.append(("close", pilot_id))
        return {**view(pilot, self._now()), "holdouts_completed": 0}

    async def preview(self, token: str, pilot_id: str, verdict: str | None) -> dict[str, Any]:
        pilot = self._find(token, pilot_id)
        rows = self.w.screenings.get(pilot_id, [])
        counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in VERDICTS}
        draft = "A draft screens nothing yet." if pilot.status is PilotStatus.draft else ""
        return {
            **view(pilot, self._now()),
            "screened": counts,
            "patients": copy.deepcopy([r for r in rows if verdict in (None, r["verdict"])]),
            "note": draft,
        }

    async def review(self, token: str, pilot_id: str) -> dict[str, Any]:
        pilot = self._find(token, pilot_id)
        now = self._now()
        reviews = self.w.pilot_reviews.get(pilot_id, [])
        preview = await self.preview(token, pilot_id, None)
        return {
            **view(pilot, now),
            "arms": self._arms(pilot_id),
            "screened": preview["screened"],
            "weeks": copy.deepcopy(self.w.pilot_weeks.get(pilot_id, [])),
            "phases": pilot_phases.phases(pilot, reviews, now) if pilot.starts_at else [],
            "reviews": list(reviews),
        }

    async def decide(
        self,
        token: str,
        pilot_id: str,
        week: int,
        decision: str,
        checklist: list[str],
        note: str,
    ) -> dict[str, Any]:
        pilot = self._find(token, pilot_id, "operator")
        subject, role, _ = _who(token)
        if decision in pilot_phases.ADMIN_DECISIONS and role != "admin":
            raise ApiError("sequencer", 403, f"{decision} needs an admin")
        now = self._now()
        try:
            decided = pilot_phases.check_decision(pilot, week, decision, checklist, now)
            if decision == "launch":
                pilot = rules.launch(pilot, now)
            if decision == "stop":
                pilot = rules.close(pilot, now)
        except ValueError as exc:
            raise ApiError("sequencer", 409, str(exc)) from None
        self.w.pilot_store[pilot_id] = pilot
        self.w.pilot_reviews.setdefault(pilot_id, []).append(
            {
                "week": week,
                "decision": decision,
                "note": note,
                "reviewed_by": subject,
                "reviewed_at": now.isoformat(),
                "checklist": list(decided.checked),
            }
        )
        self.w.calls.append(("decide", pilot_id, str(week), decision))
        return {"pilot_id": pilot_id, "week": week, "decision": decision, "status": pilot.status}
