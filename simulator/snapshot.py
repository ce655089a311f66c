"""What the live view shows, polled from the services' APIs.

``collect_snapshot`` asks metrics for each segment's funnel, the practice's totals and the
escalation response times, and the escalation service for its open queue, all at once. A
service that does not answer, or answers with an error or an unexpected shape, becomes a note
in the snapshot, never an exception: the live view keeps drawing while a service restarts.

Nothing here names a patient: cases carry their fixed-phrase summary, never the patient's words,
and conversation lines carry the opaque patient key and a shortened synthetic message body that
only the terminal shows.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

BODY_CHARS = 72
NEWEST_CASES = 4
CASE_LIMIT = 500  # the queue's own maximum page
TIMEOUT_S = 2.0  # a slow service must not freeze the view: it is asked again next refresh


@dataclass(frozen=True)
class ConversationLine:
    at: datetime
    patient_key: str  # opaque ("clinic-demo:P-000123"), never a name
    direction: str  # "outbound" (to the patient) | "inbound" (from the patient)
    body: str  # shortened, on one line


def shorten(body: str, width: int = BODY_CHARS) -> str:
    one_line = " ".join(body.split())
    return one_line if len(one_line) <= width else one_line[: width - 1].rstrip() + "\u2026"


def conversation_line(message: Mapping[str, Any], patient_key: str = "") -> ConversationLine:
    """One message from the messenger's conversation view or its sandbox feed, shortened.

    The conversation view (``/patients/{key}/conversation``) dates a message ``at`` and leaves
    the key to the caller; the sandbox feed (``/sandbox/feed``) has ``sent_at`` and the key.
    """
    at = message.get("at") or message.get("sent_at")
    return ConversationLine(
        at=at if isinstance(at, datetime) else datetime.fromisoformat(str(at)),
        patient_key=str(message.get("patient_key") or patient_key),
        direction=str(message.get("direction") or "outbound"),
        body=shorten(str(message.get("body") or message.get("subject") or "")),
    )


@dataclass(frozen=True)
class PracticeSummary:
    clinic_name: str
    patients: int


@dataclass(frozen=True)
class FunnelRow:
    segment: str
    eligible: int = 0
    reached: int = 0
    replied: int = 0
    rebooked: int = 0
    completed: int = 0
    revenue_cents: int = 0


@dataclass(frozen=True)
class OpenCase:
    case_type: str
    severity: str
    state: str
    age_minutes: int
    summary: str  # a fixed phrase chosen by case type and service line


@dataclass(frozen=True)
class EscalationBoard:
    open_cases: int
    more: bool  # the queue answered its page limit: there may be more
    by_severity: Mapping[str, int]
    by_type: Mapping[str, int]
    newest: Sequence[OpenCase]
    raised: int | None = None  # since the start, from metrics
    minutes_to_ack_median: float | None = None


@dataclass(frozen=True)
class ServiceLinks:
    name: str
    base: str
    docs: str
    metrics: str


@dataclass(frozen=True)
class Snapshot:
    sim_now: datetime | None
    speed: str  # "1 simulated day every 10 s", "paused"...
    practice: PracticeSummary | None
    funnel: Sequence[FunnelRow]
    totals: FunnelRow | None
    escalations: EscalationBoard | None  # None: the escalation service did not answer
    conversations: Sequence[ConversationLine]
    links: Sequence[ServiceLinks]
    notes: Sequence[str] = field(default_factory=list)
    activity: str = ""  # what the simulated practice is doing, in one line


class _Poll:
    """GETs that turn every failure into a note, one per unreachable service."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str], token: str) -> None:
        self.client, self.urls = client, urls
        self.headers = {"Authorization": f"Bearer {token}"}
        self.notes: list[str] = []
        self._unreachable: set[str] = set()

    async def get(self, service: str, path: str, **params: Any) -> Mapping[str, Any] | None:
        base = self.urls.get(service)
        if not base:
            self._once(service, f"{service}: no URL to ask")
            return None
        try:
            r = await self.client.get(
                base.rstrip("/") + path, params=params, headers=self.headers, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            self._once(service, f"{service} is not answering at {base} ({type(exc).__name__})")
            return None
        if r.status_code != 200:
            self.notes.append(f"{service} answered {r.status_code} to {path}")
            return None
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            self.notes.append(f"{service} answered {path} with something other than JSON")
            return None
        return body

    def _once(self, service: str, note: str) -> None:
        if service not in self._unreachable:
            self._unreachable.add(service)
            self.notes.append(note)

    def misread(self, service: str, path: str, exc: Exception) -> None:
        self.notes.append(f"{service} answered {path} in an unexpected shape ({exc!r})")


def _int(row: Mapping[str, Any], key: str) -> int:
    return int(row.get(key) or 0)


_FIGURES = ("eligible", "reached", "replied", "rebooked", "completed", "revenue_cents")


def _funnel_row(segment: str, rows: Sequence[Mapping[str, Any]]) -> FunnelRow:
    sums = [sum(_int(r, k) for r in rows) for k in _FIGURES]
    return FunnelRow(segment, *sums)


def read_funnel(segments: Mapping[str, Any]) -> list[FunnelRow]:
    """``/reports/segments`` rows, one per segment (summed over any extra dimension)."""
    by_segment: dict[str, list[Mapping[str, Any]]] = {}
    for row in segments["rows"]:
        by_segment.setdefault(str(row["segment"]), []).append(row)
    return [_funnel_row(name, rows) for name, rows in by_segment.items()]


def read_board(
    queue: Mapping[str, Any], times: Mapping[str, Any] | None, limit: int = CASE_LIMIT
) -> EscalationBoard:
    """The escalation queue (``/cases?state=open``) and metrics' response times."""
    cases = list(queue["cases"])
    newest = sorted(cases, key=lambda c: str(c["raised_at"]), reverse=True)[:NEWEST_CASES]
    row = (times or {}).get("rows") or [{}]
    return EscalationBoard(
        open_cases=len(cases),
        more=len(cases) >= limit,
        by_severity=Counter(str(c["severity"]) for c in cases),
        by_type=Counter(str(c["case_type"]) for c in cases),
        newest=[
            OpenCase(
                str(c["case_type"]),
                str(c["severity"]),
                str(c["state"]),
                int(c.get("age_minutes") or 0),
                str(c.get("summary") or ""),
            )
            for c in newest
        ],
        raised=sum(_int(r, "raised") for r in row) if times else None,
        minutes_to_ack_median=row[0].get("minutes_to_ack_median") if len(row) == 1 else None,
    )


def service_links(urls: Mapping[str, str]) -> list[ServiceLinks]:
    out = []
    for name, base in urls.items():
        root = base.rstrip("/")
        out.append(ServiceLinks(name, root, f"{root}/docs", f"{root}/metrics"))
    return out


async def collect_snapshot(
    client: httpx.AsyncClient,
    *,
    urls: Mapping[str, str],
    token: str,
    clinic_id: str,
    recent: Sequence[ConversationLine],
    sim_now: datetime | None = None,
    speed: str = "",
    practice: PracticeSummary | None = None,
) -> Snapshot:
    """Ask every service at once; what fails is a note, what answers is shown."""
    poll = _Poll(client, urls, token)
    segments, totals, times, queue = await asyncio.gather(
        poll.get("metrics", "/reports/segments", clinic_id=clinic_id),
        # The totals are the service's own (the funnel for the whole clinic), never re-added.
        poll.get("metrics", "/reports/funnel", clinic_id=clinic_id, group_by="clinic"),
        poll.get("metrics", "/reports/escalations", clinic_id=clinic_id, group_by="clinic"),
        poll.get("escalation", "/cases", clinic_id=clinic_id, state="open", limit=CASE_LIMIT),
    )
    funnel: list[FunnelRow] = []
    total: FunnelRow | None = None
    board: EscalationBoard | None = None
    try:
        funnel = read_funnel(segments) if segments is not None else []
    except (KeyError, TypeError, ValueError) as exc:
        poll.misread("metrics", "/reports/segments", exc)
    try:
        total = _funnel_row("all segments", totals["rows"]) if totals is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        poll.misread("metrics", "/reports/funnel", exc)
    if total is None and funnel:
        total = FunnelRow("all segments", *(sum(getattr(r, k) for r in funnel) for k in _FIGURES))
    try:
        board = read_board(queue, times) if queue is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        poll.misread("escalation", "/cases", exc)
    return Snapshot(
        sim_now=sim_now,
        speed=speed,
        practice=practice,
        funnel=funnel,
        totals=total,
        escalations=board,
        conversations=list(recent),
        links=service_links(urls),
        notes=poll.notes,
    )
