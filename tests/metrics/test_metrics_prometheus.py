"""A real Prometheus scrapes the metrics service; every dashboard query must return data.

The metrics service runs for real (uvicorn on a port, its consumers on the broker, Postgres).
Traffic comes from a small stand-in service built on the same shared runtime as the real
ones: it stages synthetic patients' events in its own outbox (published by the real relay) and
fires a durable timer that stages the rest, so the pipeline counters the "Pipeline health"
dashboard reads (events published, timers fired) are produced by the code that produces them in
production. They land in this process's registry, which the metrics service's /metrics serves.
A malformed message and a redelivered event give the dead-letter and duplicate counters data.
Then every PromQL expression in both dashboards is evaluated through Prometheus's HTTP API,
with Grafana's variables replaced by what "All" means, and must return at least one series.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.metrics import exposition
from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings
from shared.events import parse_event, topic_for
from shared.events.common import Segment, ServiceLine
from shared.events.messages import Barrier, BlockReason, ReplyIntent
from shared.events.outreach import Arm
from shared.events.pilot import PilotPlan
from shared.faults import HandlerFailed
from shared.migration_ops import add_timer_retries_v1, create_backbone_v1
from shared.runtime import Runtime, ServiceSpec, run_service
from shared.timers import Timer
from tests.metrics.conftest import clinic, settings_for
from tests.metrics.prometheus_server import (
    Prometheus,
    ensure_prometheus,
    free_port,
    running_prometheus,
)
from tests.metrics.story import Story

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
TRAFFIC_SCHEMA = "metrics_test_traffic"
# What Grafana substitutes for its built-in interval variables, sized for a 1 s scrape.
GRAFANA_BUILTINS = {"__rate_interval": "10s", "__interval": "2s", "__range": "1h"}


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return ensure_prometheus()


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels_of(panels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out += panels_of(panel.get("panels", []))
    return out


def substitute(expr: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise AssertionError(f"unknown dashboard variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_queries(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """([(panel title, PromQL)], [(variable, label, series selector)]) with variables replaced."""
    board = json.loads(path.read_text())
    variables = dict(GRAFANA_BUILTINS)
    label_queries = []
    for var in board.get("templating", {}).get("list", []):
        if var["type"] == "datasource":
            variables[var["name"]] = "prometheus"
            continue
        variables[var["name"]] = var.get("allValue") or ".*"
    for var in board.get("templating", {}).get("list", []):
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert found, f"{path.name}: variable {var['name']} is not a label_values() query"
        label_queries.append((var["name"], found.group(2), substitute(found.group(1), variables)))
    exprs = [
        (panel["title"], substitute(target["expr"], variables))
        for panel in panels_of(board["panels"])
        for target in panel.get("targets", [])
    ]
    return exprs, label_queries


# --- the stand-in service that makes traffic -----------------------------------------------------


def traffic_stories(c: str) -> list[Story]:
    stories = []
    for i in range(3):  # cancellations: messaged, replied, rebooked, completed
        s = Story(c)
        seq = s.started(s.eligible(0), 1)
        s.sent(seq, 2)
        s.reply(seq, 3 + i, ReplyIntent.later if i else ReplyIntent.book, Barrier.timing)
        appt = s.booked(4 + i)
        s.kept(appt, 70)
        s.visit(appt, 71, cents=12_000 + i)
        s.escalation(seq, 3, ack_after=0.2 * (i + 1), resolve_after=2 + i)
        stories.append(s)
    s = Story(c)
    seq = s.started(
        s.eligible(0, Segment.follow_up_not_booked, ServiceLine.psoriasis_eczema),
        1,
        segment=Segment.follow_up_not_booked,
        line=ServiceLine.psoriasis_eczema,
        workflow="chronic-review",
    )
    s.blocked(seq, 1.5, BlockReason.quiet_hours)
    s.sent(seq, 9)
    s.opt_out(10)
    stories.append(s)
    start = Story(c).start
    plan = PilotPlan(
        segment=Segment.cancelled_not_rescheduled,
        starts_at=start - timedelta(days=7),
        launched_at=start,
        ends_at=start + timedelta(days=23),
    )
    for arm in (Arm.outreach, Arm.outreach, Arm.holdout, Arm.holdout):
        s = Story(c)
        seq = s.started(s.eligible(0), 1, pilot_id=f"pilot-{c}", arm=arm, plan=plan)
        if arm is Arm.outreach:
            s.sent(seq, 2)
            s.clicked(seq, 1, 2.5)
            s.reply(seq, 3, ReplyIntent.later, Barrier.cost)
        s.visit(s.booked(30), 80, cents=9_000)
        stories.append(s)
    for days_before in (3, 10):  # the previous weeks: the same cohort before the launch
        s = Story(c)
        s.eligible(-24 * days_before)
        s.visit(s.booked(-24 * days_before + 30), -24 * days_before + 80, cents=9_000)
        stories.append(s)
    return stories


def create_backbone(connection: Any, schema: str) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        create_backbone_v1(schema)
        add_timer_retries_v1(schema)


def traffic_spec() -> ServiceSpec:
    """Stages events through its outbox; its timer stages the second half of each story (after
    failing twice, so the dashboard's failed-timer panel has a retry to show)."""

    def timers(runtime: Runtime) -> dict[str, Any]:
        failures = [2]

        async def fire(session: AsyncSession, due: Sequence[Timer]) -> None:
            if failures[0] > 0:
                failures[0] -= 1
                raise HandlerFailed("the rest of the story is not ready yet")
            for timer in due:
                events = [parse_event(e) for e in timer.payload["events"]]
                await runtime.outbox.stage(session, events)

        return {"rest-of-story": fire}

    return ServiceSpec(name="traffic", schema=TRAFFIC_SCHEMA, timer_handlers=timers)


@pytest.fixture(scope="module")
async def served_metrics(metrics_infra: tuple[Any, Any]) -> AsyncIterator[tuple[str, Any]]:
    """The metrics service on a real port, as Prometheus would scrape it in production."""
    pg, kafka = metrics_infra
    settings = settings_for(pg, kafka)
    app = create_app(settings, MetricsSettings(lag_interval_s=0.5))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the metrics service did not start")
        await asyncio.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}", settings
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


async def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    prometheus_binary: str, served_metrics: tuple[str, Any], metrics_infra: tuple[Any, Any]
) -> None:
    target, settings = served_metrics
    pg, _kafka = metrics_infra
    engine = create_async_engine(pg.dsn)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {TRAFFIC_SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {TRAFFIC_SCHEMA}"))
        await conn.run_sync(create_backbone, TRAFFIC_SCHEMA)
    await engine.dispose()

    c = clinic("clinic-prom")
    stories = traffic_stories(c)
    first = [e for s in stories for e in s.events if not e.type.startswith(("Visit", "Escal"))]
    rest = [e for s in stories for e in s.events if e.type.startswith(("Visit", "Escal"))]
    async with run_service(traffic_spec(), settings) as runtime:
        async with runtime.sessions() as session, session.begin():
            await runtime.outbox.stage(session, first)
            await runtime.timers.schedule(
                session,
                "rest-of-story",
                c,
                runtime.clock.now(),
                payload={"events": [e.model_dump(mode="json") for e in rest]},
            )
        # A message nothing can parse (on the topic only metrics reads), and one event twice.
        producer = runtime.producer
        assert producer is not None
        await (await producer.send("outreach.sequences.v1", b"\x00not an event", key=b"k"))
        again = first[0]
        await (
            await producer.send(
                topic_for(again.type).name, again.to_bytes(), key=again.patient_key.encode()
            )
        )

        async with running_prometheus(prometheus_binary, target) as prometheus:
            await check_every_query(prometheus)


async def check_every_query(prometheus: Prometheus, timeout: float = 45.0) -> None:
    queries = [(p.name, q) for p in dashboard_files() for q in dashboard_queries(p)[0]]
    labels = [(p.name, v) for p in dashboard_files() for v in dashboard_queries(p)[1]]
    assert {p.name for p in dashboard_files()} >= {"recall-outcomes.json", "pipeline-health.json"}
    assert len(queries) > 20
    deadline = time.monotonic() + timeout
    while True:
        empty = [
            f"{name}: {title}: {expr}"
            for name, (title, expr) in queries
            if not await prometheus.query(expr)
        ]
        empty += [
            f"{name}: variable {var} ({label} of {selector})"
            for name, (var, label, selector) in labels
            if not await prometheus.label_values(label, selector)
        ]
        if not empty or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert await prometheus.targets_up()
    assert empty == [], "queries without data:\n" + "\n".join(empty)


def test_the_recall_outcomes_dashboard_reads_only_declared_series_and_labels() -> None:
    board = json.loads((DASHBOARDS / "recall-outcomes.json").read_text())
    panels = panels_of(board["panels"])
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in board["templating"]["list"]}
    titles = set()
    for panel in panels:
        if panel["type"] == "row":
            continue
        titles.add(panel["title"])
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert set(re.findall(r"\$(\w+)", expr)) <= variables | set(GRAFANA_BUILTINS), expr
            for name in re.findall(r"\b(revisit_[a-z_]+)", expr):
                assert name in exposition.SERIES, f"{name} in {expr!r} is not exposed"
                for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
                    labels = {label.strip() for label in grouping.split(",")} - {"cohort"}
                    assert labels <= exposition.SERIES[name], expr
    assert {"Completed visits", "Revenue recovered", "Funnel by segment"} <= titles
    assert any("pilot" in t.lower() for t in titles)
    assert {"Pilot week and phase", "Barriers patients named"} <= titles
    assert any("previous weeks" in t and "observational" in t for t in titles)


def test_clicks_are_in_the_funnel_but_never_the_dashboards_headline() -> None:
    board = json.loads((DASHBOARDS / "recall-outcomes.json").read_text())
    panels = panels_of(board["panels"])
    headline_row = next(p for p in panels if p["type"] == "row")
    first_row_panels = [
        p for p in panels if p["type"] != "row" and p["gridPos"]["y"] < 5 and p is not headline_row
    ]
    assert [p["title"] for p in first_row_panels][:2] == ["Completed visits", "Revenue recovered"]
    exprs = " ".join(t["expr"] for p in first_row_panels for t in p["targets"])
    assert "clicked" not in exprs  # a click is interest, never a result
    funnel = next(p for p in panels if p["title"] == "Funnel by segment")
    assert "never a result" in funnel["description"]
