"""The rehearsal's practice team, week by week, through the services' APIs as staff would.

Week 1 (define): the pilot is defined and started; nobody is messaged while it screens and
holds its cohort; at the week's end the team reads the preview and launches with the define
checklist confirmed. Week 2 (launch): the launch group fills. Week 3 (review): the team reads
the objections by barrier, with example replies fetched from the messenger's conversation API
by their references. Week 4 (compare): after enrolment closes and outcomes are followed, the
team reads both comparisons and records its call by a fixed rehearsal rule (expand only when
the holdout comparison shows a difference in rebooking). Everything read is kept in ``record``
for the report and for whoever checks the rehearsal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from revisit.stack import DevError
from shared.pilots import WEEK
from simulator.engine import Simulation
from simulator.pilot_figures import Difference, read_pilot_figures

EXAMPLE_CHARS = 160
CHECKED = {
    1: ["eligibility", "words", "escalation_route", "holdout"],
    2: ["first_messages", "replies_answered", "opt_outs"],
    3: ["objections", "escalations", "adjustments"],
    4: ["holdout", "previous_weeks", "completed_visits"],
}
NOTES = {
    1: "Rehearsal: the preview shows the cohort as defined; launching as planned.",
    2: "Rehearsal: the launch group is being messaged; carry on.",
    3: "Rehearsal: objections read by barrier with example replies.",
}


async def api(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    response = await client.request(method, url, **kw)
    if response.status_code >= 400:
        raise DevError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


@dataclass
class Rehearsal:
    client: httpx.AsyncClient
    base: dict[str, str]
    clinic_id: str
    pilot_id: str
    sim: Simulation
    say: Callable[[str], None]
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def _pilot(self) -> str:
        return f"{self.base['sequencer']}/pilots/{self.pilot_id}"

    async def decide(self, week: int, decision: str, note: str) -> None:
        body = {"week": week, "decision": decision, "checklist": CHECKED[week], "note": note}
        await api(self.client, "POST", f"{self._pilot}/reviews", json=body)
        self.say(f"week {week}: the team decided to {decision}")

    async def run(self, definition: dict[str, Any], days: int, follow_days: int) -> datetime:
        """The pilot from its definition to the end of its follow-up; returns its start."""
        seq = self.base["sequencer"]
        await api(self.client, "POST", f"{seq}/pilots", json=definition)
        started = await api(self.client, "POST", f"{self._pilot}/start")
        start = datetime.fromisoformat(started["starts_at"])
        self.say(f"pilot {self.pilot_id}: week 1 (define) from simulated {start:%Y-%m-%d}")
        end, finish = start + timedelta(days=days), start + timedelta(days=days + follow_days)
        await self.sim.run(until=start + WEEK)
        self.record["preview"] = await api(
            self.client, "GET", f"{self._pilot}/preview", params={"limit": 5000}
        )
        self.record["week1_outbound"] = await self.outbound_before(start + WEEK)
        await self.decide(1, "launch", NOTES[1])
        for week in (2, 3):
            at = start + week * WEEK
            if at > end:
                break
            await self.sim.run(until=at)
            if week == 3:
                self.record["week3"] = await self.objections()
            await self.decide(week, "continue", NOTES[week])
        await self.sim.run(until=end)
        await api(self.client, "POST", f"{self._pilot}/close")
        self.say(f"enrolment closed; following outcomes for {follow_days} days")
        await self.sim.run(until=finish)
        if "week3" not in self.record:  # a pilot too short to reach week 3: read them now
            self.record["week3"] = await self.objections()
        report = await self.report()
        if finish >= start + 3 * WEEK:
            shown = read_pilot_figures(report).differences.get("rebooked_rate")
            await self.decide(4, *_week4(shown))
        self.record["review"] = await api(self.client, "GET", f"{self._pilot}/review")
        self.record["screened"] = await api(
            self.client, "GET", f"{self._pilot}/preview", params={"limit": 5000}
        )
        self.record["report"] = await self.report()
        return start

    async def report(self) -> dict[str, Any]:
        found: dict[str, Any] = await api(
            self.client, "GET", f"{self.base['metrics']}/reports/pilots/{self.pilot_id}"
        )
        return found

    async def objections(self) -> list[dict[str, Any]]:
        """The metrics report's objections by barrier, each example's words fetched from the
        messenger (the only place a reply's words are kept)."""
        try:
            said: list[dict[str, Any]] = (await self.report())["objections"]
        except DevError:
            return []  # nobody enrolled yet: no report
        conversations: dict[str, dict[str, str]] = {}
        for group in said:
            for example in group["examples"]:
                key = example["patient_key"]
                if key not in conversations:
                    found = await api(
                        self.client,
                        "GET",
                        f"{self.base['messenger']}/patients/{key}/conversation",
                    )
                    conversations[key] = {
                        m["message_id"]: m["body"] or "" for m in found["messages"]
                    }
                words = conversations[key].get(example["reply_id"], "")
                example["words"] = words[:EXAMPLE_CHARS]
        return said

    async def outbound_before(self, until: datetime) -> int:
        """Messages the practice's patients received before ``until`` (the sandbox's record)."""
        count, after = 0, 0
        while True:
            page = await api(
                self.client,
                "GET",
                f"{self.base['messenger']}/sandbox/feed",
                params={"clinic_id": self.clinic_id, "after": after, "limit": 5000},
            )
            for m in page["messages"]:
                sent = datetime.fromisoformat(m["sent_at"])
                count += m["direction"] == "outbound" and sent < until
            if len(page["messages"]) < 5000:
                return count
            after = page["next"]


def _week4(rebooked: Difference | None) -> tuple[str, str]:
    if rebooked is not None and rebooked.shown and (rebooked.estimate or 0) > 0:
        return "expand", "Rehearsal rule: the holdout comparison shows more rebookings; expand."
    return "adjust", "Rehearsal rule: no difference shown against the holdout yet; adjust."
