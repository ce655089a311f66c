"""Read what the stack recorded into a ``ChaosState`` for the checker.

Straight from every service's schema (the fault run drives a stack it started itself, never a
production one), the broker's topics, and the sequencer's API for each clinic's effective rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import time
from typing import Any

import asyncpg
import httpx

from revisit.chaos.checker import (
    ChaosState,
    ConsentChange,
    DeadLetter,
    EhrEvent,
    Policy,
    RedFlag,
    Send,
)
from services.messenger.app import CONTACT_EVENTS
from services.messenger.domain.conversation import escalation_id
from services.messenger.domain.system_messages import ALWAYS_ALLOWED
from services.segmenter.app import EVENT_TYPES as SEGMENTER_TYPES
from shared.config import SERVICE_NAMES
from shared.dlq import read_letters
from shared.events.escalations import CaseType
from shared.topics import ALL, EHR_EVENTS

# Who consumes what ingest publishes: "<service>.<subscription>" -> types (None: all).
EHR_CONSUMERS: dict[str, frozenset[str] | None] = {
    "segmenter.journeys": SEGMENTER_TYPES,
    "messenger.contacts": CONTACT_EVENTS,
    "metrics.read-model": None,
}


async def read_state(
    dsn: str,
    bootstrap: str,
    sequencer_url: str,
    token: str,
    deliberate: set[bytes],
) -> ChaosState:
    conn = await asyncpg.connect(dsn)
    try:
        state = ChaosState(
            consumers=dict(EHR_CONSUMERS),
            deliberate=set(deliberate),
            always_allowed_replies=frozenset(r.value for r in ALWAYS_ALLOWED),
        )
        types = await _ehr_types(bootstrap)
        accepted = await conn.fetch(
            "SELECT DISTINCT unnest(event_ids) AS id FROM ingest.source_messages"
        )
        state.accepted = [EhrEvent(r["id"], types.get(r["id"])) for r in accepted]
        for consumer in EHR_CONSUMERS:
            schema = consumer.split(".", 1)[0]
            rows = await conn.fetch(
                f"SELECT event_id::text AS id FROM {schema}.inbox WHERE consumer = $1", consumer
            )
            state.consumed |= {(consumer, r["id"]) for r in rows}
        state.sends = [
            Send(
                message_id=r["message_id"],
                patient_key=r["patient_key"],
                kind=r["kind"],
                channel=r["channel"],
                sequence_id=r["sequence_id"],
                step=r["step"],
                reply_kind=r["reply_kind"],
                sent_at=r["sent_at"],
                decided_at=r["attempted_at"],
            )
            for r in await conn.fetch(
                "SELECT s.message_id, s.patient_key, o.kind, s.channel, o.sequence_id, o.step, "
                "o.reply_kind, s.sent_at, o.attempted_at FROM messenger.sandbox_messages s "
                "JOIN messenger.outgoing o USING (message_id) WHERE s.direction = 'outbound'"
            )
        ]
        state.consent = [
            ConsentChange(r["patient_key"], r["channel"], r["change"], r["applied"], r["t"])
            for r in await conn.fetch(
                "SELECT patient_key, channel, change, applied, recorded_at AS t "
                "FROM messenger.consent_ledger WHERE purpose = 'care'"
            )
        ]
        state.patient_zones = {
            r["patient_key"]: r["time_zone"]
            for r in await conn.fetch(
                "SELECT patient_key, time_zone FROM messenger.contacts WHERE time_zone IS NOT NULL"
            )
        }
        clinics = {s.patient_key.split(":", 1)[0] for s in state.sends}
        state.policies = await _policies(sequencer_url, token, clinics)
        state.red_flags = [
            RedFlag(
                r["message_id"], r["patient_key"], escalation_id(r["message_id"], CaseType.red_flag)
            )
            for r in await conn.fetch(
                "SELECT message_id, patient_key FROM messenger.inbound WHERE intent = 'red_flag'"
            )
        ]
        state.cases = {
            r["escalation_id"]
            for r in await conn.fetch(
                "SELECT escalation_id FROM escalation.cases WHERE case_type = 'red_flag'"
            )
        }
        state.paged = {
            r["escalation_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT escalation_id FROM escalation.pages WHERE delivered_at IS NOT NULL"
            )
        }
        state.dead_letters = [
            DeadLetter(x.id, x.value) for x in await read_letters(bootstrap, [t.dlq for t in ALL])
        ]
        state.stuck = await _stuck(conn)
        return state
    finally:
        await conn.close()


async def _ehr_types(bootstrap: str) -> dict[str, str]:
    """event_id -> type of every parseable record on ehr.events.v1 (read like a DLQ: to the end)."""
    found: dict[str, str] = {}
    for record in await read_letters(bootstrap, [EHR_EVENTS.name], timeout_s=60):
        try:
            body = json.loads(record.value)
            found[str(body["event_id"])] = str(body["type"])
        except (ValueError, KeyError, TypeError):
            continue  # a deliberately bad input
    return found


async def _policies(url: str, token: str, clinics: set[str]) -> dict[str, Policy]:
    found: dict[str, Policy] = {}
    async with httpx.AsyncClient(
        trust_env=False, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for clinic in sorted(clinics):
            response = await client.get(f"{url}/clinics/{clinic}/rules")
            response.raise_for_status()
            found[clinic] = policy_of(response.json()["effective"])
    return found


def policy_of(effective: Mapping[str, Any]) -> Policy:
    return Policy(
        zone=str(effective["time_zone"]),
        start=time.fromisoformat(str(effective["allowed_from"])),
        end=time.fromisoformat(str(effective["allowed_until"])),
        per_day=int(effective["per_day"]),
        per_week=int(effective["per_week"]),
    )


async def _stuck(conn: asyncpg.Connection) -> dict[str, int]:
    outbox = sum(
        [int(await conn.fetchval(f"SELECT count(*) FROM {s}.outbox")) for s in SERVICE_NAMES]
    )
    parked = sum(
        [
            int(await conn.fetchval(f"SELECT count(*) FROM {s}.timers WHERE parked_at IS NOT NULL"))
            for s in SERVICE_NAMES
        ]
    )
    doubt = await conn.fetchval("SELECT count(*) FROM messenger.outgoing WHERE status = 'sending'")
    unknown = await conn.fetchval(
        "SELECT count(*) FROM messenger.outgoing WHERE status = 'unknown'"
    )
    queued = await conn.fetchval(
        "SELECT count(*) FROM messenger.outgoing WHERE status = 'queued' "
        "AND available_at < now() - interval '30 seconds'"
    )
    return {
        "events left in an outbox": outbox,
        "timers parked": parked,
        "messages in doubt (sending)": int(doubt),
        "messages of unknown fate": int(unknown),
        "messages queued and overdue": int(queued),
    }
