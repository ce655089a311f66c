"""Reading the audit log back: a clinic's rows by patient, subject and time; chain checks; pruning.

Shared by the services' ``/admin/audit`` routes and ``revisit audit``. Rows are appended only
by ``shared.audit`` (through ``audit.append``); nothing here changes one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

COLUMNS = (
    "id, at, service, subject, role, principal_kind, clinic_id, action, method, route, "
    "patient_key, object_id, client, status"
)


@dataclass(frozen=True)
class AuditQuery:
    clinic_id: str | None = None  # None only for callers scoped to every clinic
    patient_key: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500
    after_id: int = 0  # paging: rows with a larger id


async def find(engine: AsyncEngine, query: AuditQuery) -> list[dict[str, Any]]:
    where = ["id > :after_id"]
    params: dict[str, object] = {"after_id": query.after_id, "limit": query.limit}
    for column in ("clinic_id", "patient_key", "subject"):
        value = getattr(query, column)
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if query.since is not None:
        where.append("at >= :since")
        params["since"] = query.since
    if query.until is not None:
        where.append("at < :until")
        params["until"] = query.until
    sql = f"SELECT {COLUMNS} FROM audit.events WHERE {' AND '.join(where)} ORDER BY id LIMIT :limit"
    async with engine.connect() as conn:
        rows = (await conn.execute(text(sql), params)).mappings().all()
    return [dict(row) for row in rows]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    first_bad_id: int | None = None
    problem: str = ""
    # The chain's last hash: kept elsewhere, it shows later whether the whole log was rewritten.
    head: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "first_bad_id": self.first_bad_id,
            "problem": self.problem,
            "head": self.head,
        }


async def verify(engine: AsyncEngine, *, chunk: int = 5000) -> Verdict:
    """Walk the chain in id order: each row's hash must be its own, each link the one before.

    A changed row fails its own hash; a removed row breaks the link of the row after it; rows
    removed from the end leave the last hash short of the one ``audit.chain`` recorded.
    """
    async with engine.connect() as conn:
        head = (
            await conn.execute(
                text("SELECT last_id, last_hash, anchor_hash FROM audit.chain WHERE id = 1")
            )
        ).one()
        expected_prev: bytes = bytes(head.anchor_hash)
        seen, after = 0, 0
        while True:
            rows = await _hashed(conn, after, chunk)
            for row in rows:
                seen += 1
                if bytes(row.prev_hash) != expected_prev:
                    return Verdict(False, seen, row.id, "the row before it is missing or changed")
                if bytes(row.hash) != bytes(row.recomputed):
                    return Verdict(False, seen, row.id, "this row was changed after it was written")
                expected_prev, after = bytes(row.hash), row.id
            if len(rows) < chunk:
                break
    last = bytes(head.last_hash).hex()
    if expected_prev != bytes(head.last_hash):
        return Verdict(False, seen, head.last_id, "rows at the end of the log are missing", last)
    return Verdict(True, seen, head=last)


async def _hashed(conn: AsyncConnection, after: int, limit: int) -> list[Any]:
    sql = (
        "SELECT id, prev_hash, hash, audit.row_hash(e) AS recomputed FROM audit.events e "
        "WHERE id > :after ORDER BY id LIMIT :limit"
    )
    return list((await conn.execute(text(sql), {"after": after, "limit": limit})).all())


async def prune(engine: AsyncEngine, keep_days: int) -> int:
    """Remove rows older than ``keep_days`` (at least 30), oldest first; how many went."""
    async with engine.begin() as conn:
        removed = (
            await conn.execute(text("SELECT audit.prune(:days)"), {"days": keep_days})
        ).scalar_one()
    return int(removed)


async def append_now(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    """Append rows in the caller's transaction (for actions that must not go unrecorded)."""
    await conn.execute(
        text("SELECT audit.append(CAST(:entries AS jsonb))"),
        {"entries": json.dumps(entries, default=str)},
    )
