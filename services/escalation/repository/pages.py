"""Page deliveries: one row per (case, attempt, action, notifier), worked off by the dispatcher.

A row is ``pending`` until delivered, ``failed`` after its last try, or ``cancelled`` when the
case moved on before anyone tried it. ``next_attempt_at`` is wall time: when the row may be
tried next, and while a try is in flight, when its lease runs out (a crashed dispatcher's row
is simply tried again; the dedup key makes that harmless).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import Action, Case, PageOrder
from services.escalation.notifiers import DeliveryResult, NotifierConfig, PageNotice
from services.escalation.notifiers.config import ACTIONS
from services.escalation.repository import SCHEMA

_INSERT = text(
    f"INSERT INTO {SCHEMA}.pages (escalation_id, clinic_id, attempt, action, notifier_id, "
    "notifier_kind, rotation_id, responder_id, notice, next_attempt_at, created_at) VALUES "
    "(:e, :c, :a, :action, :n, :kind, :r, :who, CAST(:notice AS jsonb), :wall, :now) "
    "ON CONFLICT ON CONSTRAINT pages_once DO NOTHING"
)


def _notice(
    case: Case,
    action: Action,
    attempt: int,
    rotation_id: str,
    responder_id: str,
    case_url: str | None,
    email: str | None,
) -> PageNotice:
    return PageNotice(
        page_id=0,
        escalation_id=case.escalation_id,
        action=action,
        clinic_id=case.clinic_id,
        rotation_id=rotation_id,
        responder_id=responder_id,
        attempt=attempt,
        case_type=case.case_type.value,
        severity=case.severity.value,
        summary=case.summary,
        raised_at=case.raised_at,
        case_url=case_url,
        responder_email=email,
    )


async def cancel_untried(session: AsyncSession, escalation_id: str, below_attempt: int) -> None:
    """Triggers nobody has tried yet for an older attempt are moot: the case has moved on."""
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.pages SET state = 'cancelled' WHERE escalation_id = :e "
            "AND action = 'trigger' AND state = 'pending' AND tries = 0 AND attempt < :a"
        ),
        {"e": escalation_id, "a": below_attempt},
    )


async def create_triggers(
    session: AsyncSession,
    case: Case,
    order: PageOrder,
    notifiers: Sequence[NotifierConfig],
    *,
    email: str | None,
    case_url: str | None,
    now: datetime,
    wall_now: datetime,
) -> int:
    await cancel_untried(session, case.escalation_id, order.attempt)
    t = order.target
    notice = _notice(
        case, Action.trigger, order.attempt, t.rotation_id, t.responder_id, case_url, email
    )
    rows = [
        {
            "e": case.escalation_id,
            "c": case.clinic_id,
            "a": order.attempt,
            "action": Action.trigger.value,
            "n": n.notifier_id,
            "kind": n.kind.value,
            "r": t.rotation_id,
            "who": t.responder_id,
            "notice": json.dumps(notice.snapshot()),
            "wall": wall_now,
            "now": now,
        }
        for n in notifiers
    ]
    if rows:
        await session.execute(_INSERT, rows)
    return len(rows)


async def create_lifecycle(
    session: AsyncSession,
    case: Case,
    action: Action,
    by: str,
    *,
    case_url: str | None,
    now: datetime,
    wall_now: datetime,
) -> int:
    """Tell every notifier that may have shown a trigger for the case that it is acked/resolved.

    Triggers never tried are cancelled first (their provider never saw the case).
    """
    await cancel_untried(session, case.escalation_id, case.attempt + 1)
    seen = (
        await session.execute(
            text(
                f"SELECT DISTINCT ON (notifier_id) notifier_id, notifier_kind, rotation_id "
                f"FROM {SCHEMA}.pages WHERE escalation_id = :e AND action = 'trigger' "
                "AND state <> 'cancelled' ORDER BY notifier_id, id DESC"
            ),
            {"e": case.escalation_id},
        )
    ).all()
    rows = []
    for s in seen:
        if action not in ACTIONS.get(s.notifier_kind, frozenset()):
            continue
        notice = _notice(case, action, case.attempt, s.rotation_id, by, case_url, None)
        rows.append(
            {
                "e": case.escalation_id,
                "c": case.clinic_id,
                "a": case.attempt,
                "action": action.value,
                "n": s.notifier_id,
                "kind": s.notifier_kind,
                "r": s.rotation_id,
                "who": by,
                "notice": json.dumps(notice.snapshot()),
                "wall": wall_now,
                "now": now,
            }
        )
    if rows:
        await session.execute(_INSERT, rows)
    return len(rows)


async def claim_due(
    session: AsyncSession, wall_now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Claim due deliveries (one try each). Acknowledgements and resolutions wait until the
    case's earlier deliveries on the same notifier are settled, so a provider never hears
    "resolved" before "triggered"; new triggers never wait."""
    return list(
        (
            await session.execute(
                text(
                    f"WITH due AS (SELECT p.id FROM {SCHEMA}.pages p WHERE p.state = 'pending' "
                    "AND p.next_attempt_at <= :now AND (p.action = 'trigger' OR NOT EXISTS ("
                    f"SELECT 1 FROM {SCHEMA}.pages q WHERE q.escalation_id = p.escalation_id "
                    "AND q.notifier_id = p.notifier_id AND q.id < p.id AND q.state = 'pending')) "
                    "ORDER BY p.next_attempt_at, p.id LIMIT :n FOR UPDATE SKIP LOCKED) "
                    f"UPDATE {SCHEMA}.pages SET tries = tries + 1, next_attempt_at = :lease "
                    f"FROM due WHERE {SCHEMA}.pages.id = due.id RETURNING {SCHEMA}.pages.id, "
                    "escalation_id, clinic_id, attempt, action, notifier_id, notifier_kind, "
                    "notice, tries"
                ),
                {"now": wall_now, "lease": lease_until, "n": limit},
            )
        ).all()
    )


async def record(
    session: AsyncSession,
    page_id: int,
    result: DeliveryResult,
    *,
    now: datetime,
    retry_at: datetime | None,
) -> str:
    """Store a try's outcome; returns the row's new state."""
    if result.ok:
        state, sql = (
            "delivered",
            ("state = 'delivered', delivered_at = :now, provider_ref = :ref, last_error = NULL"),
        )
    elif retry_at is not None:
        state, sql = "pending", "next_attempt_at = :retry_at, last_error = :err"
    else:
        state, sql = "failed", "state = 'failed', last_error = :err"
    await session.execute(
        text(f"UPDATE {SCHEMA}.pages SET {sql} WHERE id = :id AND state = 'pending'"),
        {
            "id": page_id,
            "now": now,
            "ref": result.provider_ref,
            "err": result.detail[:200],
            "retry_at": retry_at,
        },
    )
    return state


def notice_of(row: Any) -> PageNotice:
    return PageNotice.from_snapshot(row.id, row.notice)


async def for_case(session: AsyncSession, escalation_id: str) -> list[dict[str, Any]]:
    """The deliveries of a case as the API shows them (no notice, no secret, no address)."""
    rows = (
        await session.execute(
            text(
                f"SELECT id, attempt, action, notifier_id, notifier_kind, rotation_id, "
                f"responder_id, state, tries, last_error, created_at, delivered_at "
                f"FROM {SCHEMA}.pages WHERE escalation_id = :e ORDER BY id"
            ),
            {"e": escalation_id},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def sandbox(
    session: AsyncSession,
    clinics: Iterable[str] | None,
    *,
    escalation_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where = ["TRUE"]
    params: dict[str, Any] = {"n": limit}
    if clinics is not None:
        where.append("clinic_id = ANY(:clinics)")
        params["clinics"] = sorted(clinics)
    if escalation_id is not None:
        where.append("escalation_id = :e")
        params["e"] = escalation_id
    rows = (
        await session.execute(
            text(
                f"SELECT id, page_id, clinic_id, escalation_id, action, attempt, rotation_id, "
                f"responder_id, severity, case_type, summary, case_url, recorded_at FROM "
                f"{SCHEMA}.sandbox_pages WHERE {' AND '.join(where)} ORDER BY id LIMIT :n"
            ),
            params,
        )
    ).all()
    return [dict(r._mapping) for r in rows]
