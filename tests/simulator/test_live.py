"""The live view: what it polls from the services, and how it draws what it got.

``collect_snapshot`` is exercised over real sockets against small FastAPI apps that answer the
documented shapes (metrics ``/reports/segments``, ``/reports/funnel``, ``/reports/escalations``;
escalation ``/cases``) and refuse a wrong token or clinic, as the real services do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query
from rich.console import Console

from simulator.live import render
from simulator.snapshot import (
    ConversationLine,
    EscalationBoard,
    FunnelRow,
    OpenCase,
    PracticeSummary,
    Snapshot,
    collect_snapshot,
    conversation_line,
    service_links,
    shorten,
)

TOKEN = "staff-token-for-tests"
CLINIC = "clinic-demo"
NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


# --- fixture builders: the services' answers, field for field ----------------------------------


def segment_row(
    segment: str, kind: str, eligible: int, completed: int, revenue: int
) -> dict[str, Any]:
    """A ``/reports/segments`` row (the funnel figures, rates, reactivation)."""
    reached = eligible - 2
    return {
        "clinic_id": CLINIC, "segment": segment, "kind": kind, "eligible": eligible,
        "patients": eligible, "sequences_started": eligible, "messaged": eligible - 1,
        "reached": reached, "replied": reached // 2, "opted_out": 1, "rebooked": completed + 3,
        "completed": completed, "completed_visits": completed, "revenue_cents": revenue,
        "hours_to_booking_median": 20.0, "hours_to_booking_p90": 70.0,
        "cancellations": eligible if segment == "cancelled_not_rescheduled" else 0,
        "cancellations_recovered": completed if segment == "cancelled_not_rescheduled" else 0,
        "reach_rate": reached / (eligible - 1), "response_rate": 0.5, "opt_out_rate": 0.05,
        "rebooked_rate": 0.3, "completed_rate": 0.2, "cancellation_recovery_rate": None,
        "reactivation_rate": completed / eligible if kind == "reactivation" else None,
    }  # fmt: skip


def open_case(
    n: int, case_type: str, severity: str, state: str, minutes_ago: int
) -> dict[str, Any]:
    """A ``/cases`` row: the queue's columns plus ``age_minutes``."""
    raised = NOW - timedelta(minutes=minutes_ago)
    return {
        "escalation_id": f"esc-{n}", "clinic_id": CLINIC, "patient_key": f"{CLINIC}:P-{n:06d}",
        "case_type": case_type, "severity": severity,
        "summary": "Patient asked a clinical question after a skin-check recall",
        "raised_at": raised.isoformat(), "state": state, "rotation_id": "derm-oncall",
        "responder_id": None, "attempt": 1, "ack_due_at": None, "page_at": None,
        "first_paged_at": None, "acknowledged_by": None, "acknowledged_at": None,
        "exhausted": False, "source_message_id": f"msg-{n}", "sequence_id": f"seq-{n}",
        "service_line": "skin_check", "channel": "sms", "age_minutes": minutes_ago,
    }  # fmt: skip


SEGMENTS = [
    segment_row("cancelled_not_rescheduled", "reactivation", 41, 9, 166_500),
    segment_row("follow_up_not_booked", "recall", 27, 6, 98_000),
]
CASES = [
    open_case(1, "clinical_question", "normal", "queued", 50),
    open_case(2, "red_flag", "urgent", "paging", 3),
    open_case(3, "clinical_question", "high", "acknowledged", 20),
]


def _allowed(authorization: str | None, clinic_id: str | None) -> None:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "a staff token is needed")
    if clinic_id != CLINIC:
        raise HTTPException(403, "that clinic is outside this credential")


def metrics_app(*, escalation_times_fail: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/segments")
    def segments(
        authorization: str | None = Header(None), clinic_id: str | None = None
    ) -> dict[str, Any]:
        _allowed(authorization, clinic_id)
        return {"report": "segments", "filters": {"clinic_ids": [CLINIC]}, "rows": SEGMENTS}

    @app.get("/reports/funnel")
    def funnel(
        authorization: str | None = Header(None),
        clinic_id: str | None = None,
        group_by: str = "clinic,segment",
    ) -> dict[str, Any]:
        _allowed(authorization, clinic_id)
        assert group_by == "clinic"
        # Deliberately not the sum of the segments: the view must show the service's totals.
        row = {"clinic_id": CLINIC, "eligible": 70, "reached": 65, "replied": 31,
               "rebooked": 22, "completed": 16, "revenue_cents": 270_000}  # fmt: skip
        return {"report": "funnel", "filters": {}, "rows": [row]}

    @app.get("/reports/escalations")
    def escalations(
        authorization: str | None = Header(None), clinic_id: str | None = None
    ) -> dict[str, Any]:
        _allowed(authorization, clinic_id)
        if escalation_times_fail:
            raise HTTPException(500, "the read model is unavailable")
        row = {"clinic_id": CLINIC, "raised": 9, "acknowledged": 6, "resolved": 5,
               "minutes_to_ack_median": 4.5, "minutes_to_ack_p90": 12.0,
               "minutes_to_resolve_median": 40.0, "minutes_to_resolve_p90": 90.0}  # fmt: skip
        return {"report": "escalations", "filters": {}, "rows": [row]}

    return app


def escalation_app(*, shape: str = "documented") -> FastAPI:
    app = FastAPI()

    @app.get("/cases")
    def queue(
        authorization: str | None = Header(None),
        clinic_id: str | None = None,
        state: str = "open",
        limit: int = Query(100),
    ) -> dict[str, Any]:
        _allowed(authorization, clinic_id)
        assert state == "open"
        if shape != "documented":
            return {"items": CASES}  # not what the escalation service answers
        return {"cases": CASES[:limit]}

    return app


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=5)
        sock.close()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


LINES = [
    ConversationLine(NOW - timedelta(minutes=9), f"{CLINIC}:P-000101", "outbound",
                     shorten("Hi, this is Lakeside Dermatology: reply BOOK to pick a new time.")),
    ConversationLine(NOW - timedelta(minutes=2), f"{CLINIC}:P-000101", "inbound", "BOOK"),
]  # fmt: skip


async def collect(urls: dict[str, str], token: str = TOKEN) -> Snapshot:
    async with httpx.AsyncClient() as client:
        return await collect_snapshot(
            client, urls=urls, token=token, clinic_id=CLINIC, recent=LINES, sim_now=NOW,
            speed="1 day / 10 s", practice=PracticeSummary("Lakeside Dermatology", 1_600),
        )  # fmt: skip


# --- polling -----------------------------------------------------------------------------------


async def test_collect_snapshot_reads_the_funnel_totals_and_open_cases_from_the_services() -> None:
    async with serving(metrics_app()) as metrics, serving(escalation_app()) as escalation:
        snapshot = await collect({"metrics": metrics, "escalation": escalation})
    assert snapshot.notes == []
    assert [r.segment for r in snapshot.funnel] == [
        "cancelled_not_rescheduled",
        "follow_up_not_booked",
    ]
    assert snapshot.funnel[0] == FunnelRow("cancelled_not_rescheduled", 41, 39, 19, 12, 9, 166_500)
    assert snapshot.totals == FunnelRow("all segments", 70, 65, 31, 22, 16, 270_000)
    board = snapshot.escalations
    assert board is not None and board.open_cases == 3 and not board.more
    assert board.by_severity == {"normal": 1, "urgent": 1, "high": 1}
    assert board.by_type == {"clinical_question": 2, "red_flag": 1}
    assert [c.case_type for c in board.newest] == [
        "red_flag",
        "clinical_question",
        "clinical_question",
    ]
    assert (board.raised, board.minutes_to_ack_median) == (9, 4.5)
    assert snapshot.links[0].docs == f"{metrics}/docs"
    assert snapshot.links[1].metrics == f"{escalation}/metrics"


async def test_a_failing_endpoint_becomes_a_note_and_the_rest_is_still_shown() -> None:
    metrics = metrics_app(escalation_times_fail=True)
    async with serving(metrics) as m, serving(escalation_app()) as e:
        snapshot = await collect({"metrics": m, "escalation": e})
    assert snapshot.notes == ["metrics answered 500 to /reports/escalations"]
    assert len(snapshot.funnel) == 2
    assert snapshot.escalations is not None and snapshot.escalations.open_cases == 3
    assert snapshot.escalations.minutes_to_ack_median is None


async def test_a_service_that_is_not_listening_becomes_one_note_not_an_exception() -> None:
    down = closed_port()
    async with serving(escalation_app()) as escalation:
        snapshot = await collect({"metrics": down, "escalation": escalation})
    assert snapshot.notes == [f"metrics is not answering at {down} (ConnectError)"]
    assert snapshot.funnel == [] and snapshot.totals is None
    assert snapshot.escalations is not None and snapshot.escalations.open_cases == 3
    text = draw(snapshot, 80)
    assert "not answering" in text and "no eligible patients yet" in text


async def test_an_answer_of_another_shape_and_a_refused_token_become_notes() -> None:
    async with serving(metrics_app()) as m, serving(escalation_app(shape="other")) as e:
        snapshot = await collect({"metrics": m, "escalation": e}, token="wrong")
        reshaped = await collect({"metrics": m, "escalation": e})
    assert "metrics answered 401 to /reports/segments" in snapshot.notes
    assert reshaped.escalations is None
    assert reshaped.notes == [
        "escalation answered /cases in an unexpected shape (KeyError('cases'))"
    ]


# --- drawing -----------------------------------------------------------------------------------


def draw(snapshot: Snapshot, width: int, height: int = 40) -> str:
    console = Console(record=True, width=width, height=height, color_system=None)
    console.print(render(snapshot))
    return console.export_text()


def busy_snapshot(**changes: Any) -> Snapshot:
    base: dict[str, Any] = {
        "sim_now": NOW,
        "speed": "1 day / 10 s",
        "practice": PracticeSummary("Lakeside Dermatology", 1_600),
        "funnel": [FunnelRow("cancelled_not_rescheduled", 41, 39, 19, 12, 9, 166_500),
                   FunnelRow("lapsed_patient", 230, 201, 48, 30, 21, 612_300)],
        "totals": FunnelRow("all segments", 271, 240, 67, 42, 30, 778_800),
        "escalations": EscalationBoard(3, False, {"urgent": 1, "normal": 2},
                                       {"red_flag": 1, "clinical_question": 2},
                                       [OpenCase("red_flag", "urgent", "paging", 3, "x")], 9, 4.5),
        "conversations": [*LINES, ConversationLine(NOW, f"{CLINIC}:P-000102", "inbound",
                                                   "[bold red]is this real?[/]")],
        "links": service_links({"metrics": "http://127.0.0.1:8006",
                                "escalation": "http://127.0.0.1:8005/"}),
        "notes": ["sequencer answered 503 to /pilots"],
    }  # fmt: skip
    return Snapshot(**{**base, **changes})


def test_the_view_shows_segments_their_figures_totals_cases_lines_and_urls_at_120_columns() -> None:
    text = draw(busy_snapshot(), 120)
    assert "cancelled not rescheduled" in text and "lapsed patient" in text
    row = next(line for line in text.splitlines() if "lapsed patient" in line)
    assert row.strip("│ ").split()[-6:] == ["230", "201", "48", "30", "21", "$6,123"]
    total = next(line for line in text.splitlines() if "All segments" in line)
    assert "271" in total and "$7,788" in total
    assert "Wed 04 Mar 2026 10:15" in text and "1 day / 10 s" in text
    assert "Lakeside Dermatology" in text and "1,600 synthetic patients" in text
    assert "3 open" in text and "1 urgent" in text and "red flag (paging)" in text
    assert "9 raised, median 4.5 min to ack" in text
    assert "P-000101" in text and "BOOK" in text
    assert "[bold red]is this real?[/]" in text  # a message's words are never rich markup
    for url in ("http://127.0.0.1:8006/docs", "http://127.0.0.1:8006/metrics",
                "http://127.0.0.1:8005/docs", "http://127.0.0.1:8005/metrics"):  # fmt: skip
        assert url in text
    assert "sequencer answered 503 to /pilots" in text
    assert len(text.splitlines()) <= 40
    assert max(len(line) for line in text.splitlines()) <= 120


def test_the_view_draws_at_80_by_24_and_with_nothing_to_show() -> None:
    assert "lapsed patient" in draw(busy_snapshot(), 80, 24)
    empty = busy_snapshot(
        sim_now=None, practice=None, funnel=[], totals=None, escalations=None, conversations=[],
        links=[], notes=[],
    )  # fmt: skip
    text = draw(empty, 80, 24)
    assert "starting" in text and "no eligible patients yet" in text and "no messages yet" in text
    assert "escalation service not answering" in text


def test_conversation_lines_come_from_the_messenger_shapes_shortened_to_one_line() -> None:
    from_view = conversation_line(
        {"message_id": "m-1", "direction": "outbound", "channel": "sms",
         "body": "Hi,\nthis is Lakeside Dermatology. " + "x" * 200,
         "at": "2026-03-04T10:01:00+00:00"},
        patient_key=f"{CLINIC}:P-000101",
    )  # fmt: skip
    assert from_view.patient_key == f"{CLINIC}:P-000101"
    assert from_view.at == datetime(2026, 3, 4, 10, 1, tzinfo=UTC)
    assert from_view.body.startswith("Hi, this is Lakeside") and from_view.body.endswith("\u2026")
    assert len(from_view.body) == 72 and "\n" not in from_view.body
    from_feed = conversation_line(
        {"seq": 7, "patient_key": f"{CLINIC}:P-000102", "direction": "inbound", "body": "STOP",
         "sent_at": "2026-03-04T10:02:00Z", "channel": "sms", "address": "+15555550102"}
    )  # fmt: skip
    assert (from_feed.patient_key, from_feed.direction, from_feed.body) == (
        f"{CLINIC}:P-000102",
        "inbound",
        "STOP",
    )
