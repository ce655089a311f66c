"""One synthetic patient through every service, then: where did their details go?

- nowhere outside the database: no log line, exported span or /metrics text carries the name,
  phone, e-mail, birth date, record number, message words or case note (patient_key travels as
  a keyed pseudonym);
- every read and change through the APIs is in the audit log, with who, what, from where and
  the outcome, and the chain verifies;
- after an erasure, no column of any table holds them, the metrics counts are what they were,
  and the audit log keeps its rows and records the erasure.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from revisit import cli
from revisit.embedded.broker import EmbeddedBroker, ExternalBroker
from shared import audit_log
from shared.phi import pseudonym
from tests.integration.patient_story import (
    audit_flushed,
    first_message_sent,
    metrics_counted,
    patient_replies_by_sms,
    seed_patient,
    set_up_practice,
    staff_read_and_write,
)
from tests.integration.patient_world import World, running_world

pytestmark = pytest.mark.integration

SCHEMAS = ("ingest", "segmenter", "sequencer", "messenger", "escalation", "metrics", "platform")


@pytest.fixture(scope="module")
def own_broker() -> Iterator[EmbeddedBroker | ExternalBroker]:
    """A broker of this module's own: six services joining topics that other tests filled
    would first work through all of their events (paging, sending) for unknown patients."""
    if bootstrap := os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        yield ExternalBroker(bootstrap)
        return
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
async def world(pg: Any, own_broker: Any) -> AsyncIterator[World]:
    async with running_world(pg, own_broker) as w:
        await set_up_practice(w)
        await seed_patient(w)
        await first_message_sent(w)
        await patient_replies_by_sms(w)
        await staff_read_and_write(w)
        await metrics_counted(w)
        await audit_flushed(w)
        yield w


async def test_no_log_line_span_or_metric_carries_the_patients_details(world: World) -> None:
    logs = world.logs.getvalue()
    spans = "\n".join(span.to_json() for span in world.spans.get_finished_spans())
    metrics = await world.metrics_text()
    assert logs and spans and metrics  # something was captured, so absence means something
    for what, value in world.patient.values().items():
        for where, captured in (("logs", logs), ("spans", spans), ("/metrics", metrics)):
            assert value not in captured, f"the {what} leaked into {where}"


async def test_the_patient_key_travels_in_spans_only_as_its_pseudonym(world: World) -> None:
    spans = world.spans.get_finished_spans()
    routes = {str((s.attributes or {}).get("http.route")) for s in spans}
    assert "/inbox/conversations/{patient_key}" in routes
    assert world.patient.patient_key not in "\n".join(s.to_json() for s in spans)
    keyed = [
        s
        for s in spans
        if (s.attributes or {}).get("messaging.kafka.message.key")
        == pseudonym(world.patient.patient_key)
    ]
    # Where an instrumentation records the Kafka key, it is the pseudonym (none may record it).
    assert all(
        (s.attributes or {}).get("messaging.kafka.message.key", "").startswith("pk_")
        for s in spans
        if "messaging.kafka.message.key" in (s.attributes or {})
    ), keyed


async def test_every_read_and_change_is_in_the_audit_log_with_who_what_where_and_outcome(
    world: World,
) -> None:
    p = world.patient
    rows = await audit_log.find(world.engine, audit_log.AuditQuery(p.clinic, limit=5000))
    mine = [r for r in rows if r["patient_key"] == p.patient_key]
    seen = {(r["service"], r["method"], r["route"], r["subject"], r["status"]) for r in mine}
    assert any(s[:3] == ("ingest", "PUT", "/fhir/r4/{kind}/{resource_id}") for s in seen), seen
    assert any(s[:3] == ("ingest", "POST", "/events") and s[4] == 202 for s in seen), seen
    assert (
        "messenger",
        "POST",
        "/webhooks/twilio/sms",
        "provider:twilio",
        200,
    ) in seen
    assert (
        "messenger",
        "GET",
        "/inbox/conversations/{patient_key}",
        "nurse-ivo",
        200,
    ) in seen
    # A case's routes name the case's patient too (the path names only the case).
    assert ("escalation", "POST", "/cases/{escalation_id}/notes", "nurse-ivo", 201) in seen
    assert ("escalation", "GET", "/cases/{escalation_id}", "nurse-ivo", 200) in seen
    # Lists name every patient whose details they showed.
    assert ("escalation", "GET", "/cases", "nurse-ivo", 200) in seen
    assert ("messenger", "GET", "/inbox", "nurse-ivo", 200) in seen
    read = next(r for r in mine if r["route"] == "/inbox/conversations/{patient_key}")
    assert read["role"] == "operator" and read["clinic_id"] == p.clinic
    assert read["action"] == "read" and read["client"]
    noted = [r for r in rows if r["route"] == "/cases/{escalation_id}/notes"]
    assert noted and noted[0]["object_id"] == f"escalation_id={world.case_id}"
    assert noted[0]["action"] == "change" and noted[0]["subject"] == "nurse-ivo"
    refused = [r for r in mine if r["subject"] == "outsider"]
    assert refused and refused[0]["status"] in (403, 404)
    assert (await audit_log.verify(world.engine)).ok


async def test_a_clinic_admin_reads_only_their_clinics_audit_rows(world: World) -> None:
    p = world.patient
    client = world.clients["metrics"]
    mine = await client.get(
        "/admin/audit", params={"patient_key": p.patient_key}, headers=world.staff()
    )
    assert mine.status_code == 200, mine.text
    assert mine.json()["count"] > 0
    assert {r["clinic_id"] for r in mine.json()["rows"]} == {p.clinic}
    other = await client.get(
        "/admin/audit", params={"clinic_id": "clinic-elsewhere"}, headers=world.staff()
    )
    assert other.status_code == 403
    viewer = await client.get("/admin/audit", headers=world.staff("viewer"))
    assert viewer.status_code == 403


async def _text_columns(world: World) -> list[tuple[str, str, str, str]]:
    return [
        (r["table_schema"], r["table_name"], r["column_name"], r["data_type"])
        for r in await world.rows(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE t.table_type = 'BASE TABLE' AND c.table_schema = ANY(:s) "
            "AND c.data_type IN ('text', 'jsonb', 'bytea', 'ARRAY', 'character varying')",
            s=list(SCHEMAS),
        )
    ]


async def test_the_erasure_plan_names_every_table_that_holds_a_patient_key(world: World) -> None:
    """A table added later with a patient_key column must join the erasure plan."""
    from shared.erasure import PLAN

    planned = " ".join(statement for _schema, statement in PLAN)
    holding = {
        f"{schema}.{table}"
        for schema, table, column, _kind in await _text_columns(world)
        if column in ("patient_key", "freed_by")
    }
    assert holding, "no table with a patient_key column: the scan itself is broken"
    missing = sorted(t for t in holding if t not in planned)
    assert not missing, f"tables holding a patient_key that erasure leaves alone: {missing}"


async def _where_found(world: World, value: str) -> list[str]:
    found = []
    async with world.engine.connect() as conn:
        for schema, table, column, kind in await _text_columns(world):
            as_text = (
                f"encode({column}, 'escape')" if kind == "bytea" else f"CAST({column} AS text)"
            )
            sql = f'SELECT count(*) FROM {schema}."{table}" WHERE {as_text} LIKE :v'
            if (await conn.execute(text(sql), {"v": f"%{value}%"})).scalar():
                found.append(f"{schema}.{table}.{column}")
    return found


async def test_erasure_leaves_nothing_identifying_but_keeps_counts_and_the_audit_trail(
    world: World,
) -> None:
    p = world.patient
    # Before: the details are really in the database (so the scan below can find them).
    assert await _where_found(world, p.given)
    assert await _where_found(world, p.record_number)
    counts_sql = (
        "SELECT (SELECT count(*) FROM metrics.episodes WHERE clinic_id = :c) AS episodes, "
        "(SELECT count(*) FROM metrics.escalations WHERE clinic_id = :c) AS escalations, "
        "(SELECT coalesce(sum(n), 0) FROM metrics.event_counts WHERE clinic_id = :c) AS events, "
        "(SELECT coalesce(sum(n), 0) FROM metrics.send_counts WHERE clinic_id = :c) AS sends"
    )
    before = (await world.rows(counts_sql, c=p.clinic))[0]
    assert before["episodes"] >= 1 and before["events"] >= 1
    audit_before = await world.scalar("SELECT count(*) FROM audit.events")

    erased = await world.clients["sequencer"].post(
        "/admin/patients/erase",
        json={"clinic_id": p.clinic, "patient_id": p.patient_id},
        headers=world.staff(subject="privacy-officer"),
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["rows"]

    leaks = {what: await _where_found(world, v) for what, v in p.values().items()}
    assert {what: where for what, where in leaks.items() if where} == {}
    assert (await world.rows(counts_sql, c=p.clinic))[0] == before

    await audit_flushed(world)
    assert await world.scalar("SELECT count(*) FROM audit.events") > audit_before
    erasure = await world.rows(
        "SELECT subject, route, status FROM audit.events "
        "WHERE action = 'erase' AND patient_key = :k",
        k=p.patient_key,
    )
    assert erasure == [
        {"subject": "privacy-officer", "route": "/admin/patients/erase", "status": 200}
    ]
    assert (await audit_log.verify(world.engine)).ok


async def test_the_cli_erases_too_and_the_audit_log_says_who(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", world.dsn)
    argv = ["patient", "erase", world.patient.clinic, "never-seen-9"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"patient_key": f"{world.patient.clinic}:never-seen-9", "rows": {}}
    recorded = await world.rows(
        "SELECT subject, action FROM audit.events WHERE patient_key = :k",
        k=f"{world.patient.clinic}:never-seen-9",
    )
    assert recorded == [{"subject": f"cli:{getpass.getuser()}", "action": "erase"}]
