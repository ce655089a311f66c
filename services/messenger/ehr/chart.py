"""The conversation in the chart, for clinics whose connection switches it on (off by default).

Two hooks, each one statement in the transaction that records the message: ``note_sent`` after
the dispatcher records sends, ``note_received`` after a reply is stored. They queue the message
only for clinics with ``chart_messages`` on. The writer then claims queued messages (commit),
writes each as a FHIR Communication with no transaction open (conditional create on Revisit's
message id, so a repeat leaves one record), and records the outcome (commit). A message that
cannot be written (no connection, no write access, the patient not matched) is marked failed
with the reason; an unreachable EHR is tried again later, up to ``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.ehr import store
from services.messenger.ehr.client import EhrUnavailable
from services.messenger.ehr.domain import chart
from services.messenger.ehr.domain.identity import Match
from services.messenger.ehr.routing import ClinicScheduling
from shared.runtime import Runtime

log = logging.getLogger(__name__)
S = store.SCHEMA
MAX_ATTEMPTS = 10
LEASE_S = 60
_ON = (
    f"JOIN {S}.ehr_connections c ON c.clinic_id = m.clinic "
    "AND coalesce((c.settings->>'chart_messages')::boolean, false) "
    "AND coalesce((c.settings->>'enabled')::boolean, true)"
)


async def note_sent(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue sent messages for the chart (only clinics that asked for it)."""
    if not rows:
        return
    await session.execute(
        text(
            f"INSERT INTO {S}.ehr_chart_queue (message_id, clinic_id, patient_key, direction, "
            "status) SELECT m.id, m.clinic, m.pk, 'outbound', 'pending' FROM unnest("
            "CAST(:ids AS text[]), CAST(:clinics AS text[]), CAST(:pks AS text[])) "
            f"AS m(id, clinic, pk) {_ON} ON CONFLICT DO NOTHING"
        ),
        {
            "ids": [r["message_id"] for r in rows],
            "clinics": [r["clinic_id"] for r in rows],
            "pks": [r["patient_key"] for r in rows],
        },
    )


async def note_received(
    session: AsyncSession, message_id: str, clinic_id: str, patient_key: str
) -> None:
    """Queue a stored reply for the chart (only clinics that asked for it)."""
    await session.execute(
        text(
            f"INSERT INTO {S}.ehr_chart_queue (message_id, clinic_id, patient_key, direction, "
            "status) SELECT :id, m.clinic, :pk, 'inbound', 'pending' "
            f"FROM (SELECT CAST(:c AS text) AS clinic) AS m {_ON} ON CONFLICT DO NOTHING"
        ),
        {"id": message_id, "c": clinic_id, "pk": patient_key},
    )


_CLAIM = f"""
UPDATE {S}.ehr_chart_queue q SET attempts = q.attempts + 1,
    available_at = now() + make_interval(secs => {LEASE_S})
WHERE q.message_id IN (SELECT message_id FROM {S}.ehr_chart_queue
    WHERE status = 'pending' AND available_at <= now() ORDER BY available_at
    LIMIT :n FOR UPDATE SKIP LOCKED)
RETURNING q.message_id, q.clinic_id, q.patient_key, q.direction, q.attempts
"""
_MESSAGES = f"""
SELECT message_id, channel, body, sent_at AS at, in_reply_to FROM {S}.outgoing
    WHERE message_id = ANY(:ids)
UNION ALL
SELECT message_id, channel, body, received_at AS at, in_reply_to FROM {S}.inbound
    WHERE message_id = ANY(:ids)
"""


class ChartWriter:
    def __init__(self, runtime: Runtime, routing: ClinicScheduling) -> None:
        self.runtime = runtime
        self.routing = routing

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        async with self.runtime.sessions() as session, session.begin():
            claimed = [
                dict(r._mapping) for r in (await session.execute(text(_CLAIM), {"n": limit}))
            ]
            if not claimed:
                return []
            ids = [c["message_id"] for c in claimed]
            found = {
                r._mapping["message_id"]: dict(r._mapping)
                for r in await session.execute(text(_MESSAGES), {"ids": ids})
            }
        return [{**c, **found.get(c["message_id"], {})} for c in claimed]

    async def _record(self, message_id: str, status: str, **kw: Any) -> None:
        async with self.runtime.sessions() as session, session.begin():
            await session.execute(
                text(
                    f"UPDATE {S}.ehr_chart_queue SET status = :st, failure = :f, "
                    "communication_id = :cid, available_at = now() + make_interval(secs => :wait), "
                    "written_at = CASE WHEN :st = 'written' THEN now() END WHERE message_id = :m"
                ),
                {
                    "m": message_id,
                    "st": status,
                    "f": kw.get("failure"),
                    "cid": kw.get("communication_id"),
                    "wait": kw.get("retry_in", 0),
                },
            )

    async def write_once(self, limit: int = 50) -> int:
        """Write what is due; returns how many messages were handled."""
        rows = await self._claim(limit)
        for row in rows:
            try:
                outcome = await self._write(row)
            except EhrUnavailable as exc:
                if row["attempts"] >= MAX_ATTEMPTS:
                    outcome = {"status": "failed", "failure": f"unreachable: {exc}"[:200]}
                else:
                    wait = min(2 ** row["attempts"], 600)
                    outcome = {"status": "pending", "failure": str(exc)[:200], "retry_in": wait}
            await self._record(row["message_id"], **outcome)
        return len(rows)

    async def _write(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("body") is None or row.get("at") is None:
            return {"status": "failed", "failure": "message not found"}
        ehr = await self.routing.ehr_for(row["clinic_id"])
        if ehr is None:
            return {"status": "failed", "failure": "no EHR connection"}
        if ehr.connection.capabilities and not ehr.connection.can_write_communications():
            return {"status": "failed", "failure": "the EHR takes no Communication writes"}
        who = await ehr.resolve(row["patient_key"])
        if who.match is not Match.one or not who.patient_id:
            return {"status": "failed", "failure": f"patient not matched: {who.match.value}"}
        async with self.runtime.sessions() as session:
            appointment = await store.latest_appointment(session, row["patient_key"])
        entry = chart.ChartEntry(
            message_id=row["message_id"],
            direction=chart.Direction(row["direction"]),
            patient_id=who.patient_id,
            channel=str(row["channel"]),
            body=str(row["body"]),
            at=row["at"],
            about=(f"Appointment/{appointment}",) if appointment else (),
            in_response_to=row.get("in_reply_to"),
        )
        answer = await ehr.client.create(
            "Communication",
            chart.communication(entry),
            if_none_exist=chart.if_none_exist(row["message_id"]),
        )
        if answer.ok:
            return {"status": "written", "communication_id": answer.created_id("Communication")}
        return {"status": "failed", "failure": f"refused: http {answer.status}"}

    async def run(self, stop: asyncio.Event, idle_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                handled = await self.write_once()
            except Exception as exc:  # a database hiccup: the rows stay queued
                log.warning("chart writer retrying", extra={"error": type(exc).__name__})
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)
