"""The audit log on a real Postgres: append-only for the services' role, hash-chained, verifiable.

Each test gets a database of its own holding only the audit schema, because some of them tamper
with the chain on purpose (as someone with the owner's rights would) and must not break the
log every other test shares.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from revisit import cli
from revisit.migrate import _upgrade, migration_locations
from shared import audit_log
from shared.audit import AuditWriter

pytestmark = pytest.mark.integration
SERVICE_ROLE = "revisit_service_test"


def entry(n: int, *, patient: str = "clinic-a:p-1", at: datetime | None = None) -> dict[str, Any]:
    return {
        "at": (at or datetime.now(UTC)).isoformat(),
        "service": "messenger",
        "subject": f"staff-{n}",
        "role": "operator",
        "principal_kind": "staff",
        "clinic_id": patient.split(":")[0],
        "action": "read",
        "method": "GET",
        "route": "/patients/{patient_key}/conversation",
        "patient_key": patient,
        "object_id": None,
        "client": "10.0.0.7",
        "status": 200,
    }


@pytest.fixture
async def owner(pg: Any) -> AsyncIterator[AsyncEngine]:
    """A fresh database with the audit schema, as the (owning) migrating role."""
    name = f"audit_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(pg.dsn, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg.dsn).set(database=name)
    engine = create_async_engine(url, hide_parameters=True)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, migration_locations()["audit"], "head")
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def service(owner: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The same database as a login role holding only revisit_audit_writer (the services')."""
    async with owner.begin() as conn:
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": SERVICE_ROLE}
        )
        if not exists:
            await conn.execute(text(f"CREATE ROLE {SERVICE_ROLE} LOGIN"))
        await conn.execute(text(f"GRANT revisit_audit_writer TO {SERVICE_ROLE}"))
    engine = create_async_engine(owner.url.set(username=SERVICE_ROLE), hide_parameters=True)
    try:
        yield engine
    finally:
        await engine.dispose()


async def write(engine: AsyncEngine, *entries: dict[str, Any]) -> None:
    writer = AuditWriter(engine, "test")
    for e in entries:
        writer.record(e)
    assert await writer.flush() == len(entries)


async def test_the_services_role_appends_but_cannot_change_delete_or_insert_rows(
    service: AsyncEngine,
) -> None:
    await write(service, entry(1), entry(2))
    refused = [
        "UPDATE audit.events SET subject = 'someone-else'",
        "DELETE FROM audit.events",
        "TRUNCATE audit.events",
        "INSERT INTO audit.events SELECT * FROM audit.events LIMIT 1",
        "UPDATE audit.chain SET last_hash = '\\x00'::bytea",
        "SELECT audit.prune(1)",
    ]
    for sql in refused:
        with pytest.raises(DBAPIError) as raised:
            async with service.begin() as conn:
                await conn.execute(text(sql))
        message = str(raised.value)
        assert "permission denied" in message or "kept at least 30 days" in message, sql
    async with service.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM audit.events")) == 2
    assert (await audit_log.verify(service)).ok


async def test_even_the_owner_cannot_update_or_delete_a_row(owner: AsyncEngine) -> None:
    await write(owner, entry(1))
    for sql in ("UPDATE audit.events SET status = 500", "DELETE FROM audit.events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with owner.begin() as conn:
                await conn.execute(text(sql))


async def test_each_row_carries_the_hash_of_the_row_before(owner: AsyncEngine) -> None:
    await write(owner, *(entry(n) for n in range(5)))
    async with owner.connect() as conn:
        rows = (
            await conn.execute(text("SELECT prev_hash, hash FROM audit.events ORDER BY id"))
        ).all()
    assert bytes(rows[0].prev_hash) == b"\x00" * 32
    for before, after in itertools.pairwise(rows):
        assert bytes(after.prev_hash) == bytes(before.hash)
    verdict = await audit_log.verify(owner)
    assert verdict.ok and verdict.rows == 5


async def _tamper(owner: AsyncEngine, sql: str) -> None:
    """What someone with the owner's rights could do: lift the trigger, edit, put it back."""
    async with owner.begin() as conn:
        await conn.execute(text("ALTER TABLE audit.events DISABLE TRIGGER events_append_only"))
        await conn.execute(text(sql))
        await conn.execute(text("ALTER TABLE audit.events ENABLE TRIGGER events_append_only"))


async def test_verify_names_a_changed_row(owner: AsyncEngine) -> None:
    await write(owner, *(entry(n) for n in range(6)))
    async with owner.connect() as conn:
        third = await conn.scalar(text("SELECT id FROM audit.events ORDER BY id OFFSET 2 LIMIT 1"))
    await _tamper(owner, f"UPDATE audit.events SET subject = 'nobody' WHERE id = {third}")
    verdict = await audit_log.verify(owner)
    assert not verdict.ok and verdict.first_bad_id == third
    assert "changed" in verdict.problem


async def test_verify_names_the_row_after_a_removed_one(owner: AsyncEngine) -> None:
    await write(owner, *(entry(n) for n in range(6)))
    async with owner.connect() as conn:
        ids = list((await conn.execute(text("SELECT id FROM audit.events ORDER BY id"))).scalars())
    await _tamper(owner, f"DELETE FROM audit.events WHERE id = {ids[3]}")
    verdict = await audit_log.verify(owner)
    assert not verdict.ok and verdict.first_bad_id == ids[4]
    assert "missing" in verdict.problem


async def test_verify_notices_rows_removed_from_the_end(owner: AsyncEngine) -> None:
    await write(owner, *(entry(n) for n in range(4)))
    await _tamper(owner, "DELETE FROM audit.events WHERE id = (SELECT max(id) FROM audit.events)")
    verdict = await audit_log.verify(owner)
    assert not verdict.ok and "end of the log" in verdict.problem


async def test_pruning_removes_only_old_rows_and_the_rest_still_verifies(
    service: AsyncEngine,
) -> None:
    old = datetime.now(UTC) - timedelta(days=45)
    await write(service, *(entry(n, at=old) for n in range(3)))
    await write(service, *(entry(n) for n in range(2)))
    assert await audit_log.prune(service, keep_days=30) == 3
    assert await audit_log.prune(service, keep_days=30) == 0
    verdict = await audit_log.verify(service)
    assert verdict.ok and verdict.rows == 2


async def test_a_clinic_query_finds_rows_by_patient_subject_and_time(owner: AsyncEngine) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await write(
        owner,
        entry(1, patient="clinic-a:p-1"),
        entry(2, patient="clinic-a:p-2"),
        entry(1, patient="clinic-b:p-1"),
    )
    found = await audit_log.find(
        owner, audit_log.AuditQuery("clinic-a", patient_key="clinic-a:p-1")
    )
    assert [(r["subject"], r["patient_key"]) for r in found] == [("staff-1", "clinic-a:p-1")]
    by_subject = await audit_log.find(owner, audit_log.AuditQuery("clinic-a", subject="staff-1"))
    assert {r["clinic_id"] for r in by_subject} == {"clinic-a"}
    later = await audit_log.find(
        owner, audit_log.AuditQuery("clinic-a", since=datetime.now(UTC) + timedelta(hours=1))
    )
    assert later == []
    assert len(await audit_log.find(owner, audit_log.AuditQuery("clinic-a", since=before))) == 2


async def test_the_cli_queries_a_clinic_and_verify_exits_1_on_a_tampered_log(
    owner: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write(owner, entry(1, patient="clinic-a:p-7"), entry(2, patient="clinic-b:p-7"))
    monkeypatch.setenv("DATABASE_URL", owner.url.render_as_string(hide_password=False))
    query = ["audit", "query", "--clinic", "clinic-a"]
    assert await asyncio.to_thread(cli.main, query) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["clinic_id"], r["patient_key"]) for r in printed] == [("clinic-a", "clinic-a:p-7")]
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    await _tamper(owner, "UPDATE audit.events SET status = 204")
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 1
    assert "changed" in json.loads(capsys.readouterr().out)["problem"]
