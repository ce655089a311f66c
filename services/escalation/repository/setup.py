"""A clinic's set-up: business hours and SLAs, rotations and overrides, routing rules.

The first time Revisit touches a clinic (its first case, or its first set-up call) the clinic
gets the defaults of ``domain/defaults.py``; every later change is the clinic's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import BusinessHours, Member, Override, Rotation, RoutingRule
from services.escalation.domain import defaults as seed
from services.escalation.domain.routing import Hours, PageWhen
from services.escalation.repository import SCHEMA
from shared.events.escalations import CaseType, Severity


@dataclass(frozen=True)
class Clinic:
    clinic_id: str
    hours: BusinessHours
    ack_minutes: Mapping[str, int]
    default_notifiers: tuple[str, ...]


async def ensure_clinic(session: AsyncSession, clinic_id: str, time_zone: str) -> bool:
    """Seed a clinic's defaults the first time it is seen; True when it was seeded now."""
    hours = seed.default_hours(time_zone)
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.clinics (clinic_id, time_zone, opens, closes) "
                "VALUES (:c, :tz, :o, :cl) ON CONFLICT (clinic_id) DO NOTHING RETURNING clinic_id"
            ),
            {"c": clinic_id, "tz": time_zone, "o": hours.opens, "cl": hours.closes},
        )
    ).first()
    if row is None:
        return False
    for rotation in seed.default_rotations(time_zone):
        await upsert_rotation(session, clinic_id, rotation, replace=False)
    await _insert_rules(session, clinic_id, seed.default_rules(), replace=False)
    return True


async def load_clinic(session: AsyncSession, clinic_id: str) -> Clinic | None:
    row = (
        await session.execute(
            text(
                f"SELECT time_zone, opens, closes, open_days, ack_minutes, default_notifiers "
                f"FROM {SCHEMA}.clinics WHERE clinic_id = :c"
            ),
            {"c": clinic_id},
        )
    ).first()
    if row is None:
        return None
    hours = BusinessHours(row.time_zone, row.opens, row.closes, frozenset(row.open_days))
    return Clinic(clinic_id, hours, dict(row.ack_minutes), tuple(row.default_notifiers))


async def update_clinic(session: AsyncSession, clinic: Clinic) -> None:
    h = clinic.hours
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.clinics SET time_zone = :tz, opens = :o, closes = :cl, "
            "open_days = CAST(:days AS jsonb), ack_minutes = CAST(:ack AS jsonb), "
            "default_notifiers = CAST(:notifiers AS jsonb) WHERE clinic_id = :c"
        ),
        {
            "c": clinic.clinic_id,
            "tz": h.time_zone,
            "o": h.opens,
            "cl": h.closes,
            "days": json.dumps(sorted(h.days)),
            "ack": json.dumps(dict(clinic.ack_minutes)),
            "notifiers": json.dumps(list(clinic.default_notifiers)),
        },
    )


# --- rotations ---------------------------------------------------------------------------------


def _rotation(row: Any, overrides: Sequence[Override]) -> Rotation:
    return Rotation(
        rotation_id=row.rotation_id,
        name=row.name,
        time_zone=row.time_zone,
        handoff_time=row.handoff_time,
        shift_days=row.shift_days,
        anchor_date=row.anchor_date,
        members=tuple(Member(m["responder_id"], m.get("email")) for m in row.members),
        overrides=tuple(overrides),
        fallback_rotation_id=row.fallback_rotation_id,
        notifier_ids=tuple(row.notifier_ids),
    )


async def load_rotations(
    session: AsyncSession, clinic_id: str, *, overrides_after: datetime | None = None
) -> dict[str, Rotation]:
    """Every rotation of a clinic, with its overrides (those ending after ``overrides_after``)."""
    rows = (
        await session.execute(
            text(
                f"SELECT rotation_id, name, time_zone, handoff_time, shift_days, anchor_date, "
                f"members, fallback_rotation_id, notifier_ids FROM {SCHEMA}.rotations "
                "WHERE clinic_id = :c ORDER BY rotation_id"
            ),
            {"c": clinic_id},
        )
    ).all()
    found = (
        await session.execute(
            text(
                f"SELECT override_id, rotation_id, responder_id, starts_at, ends_at "
                f"FROM {SCHEMA}.rotation_overrides WHERE clinic_id = :c "
                "AND (CAST(:after AS timestamptz) IS NULL OR ends_at > :after) "
                "ORDER BY starts_at, override_id"
            ),
            {"c": clinic_id, "after": overrides_after},
        )
    ).all()
    by_rotation: dict[str, list[Override]] = {}
    for o in found:
        by_rotation.setdefault(o.rotation_id, []).append(
            Override(o.override_id, o.responder_id, o.starts_at, o.ends_at)
        )
    return {r.rotation_id: _rotation(r, by_rotation.get(r.rotation_id, [])) for r in rows}


async def upsert_rotation(
    session: AsyncSession, clinic_id: str, rotation: Rotation, *, replace: bool = True
) -> None:
    members = [
        {"responder_id": m.responder_id, **({"email": m.email} if m.email else {})}
        for m in rotation.members
    ]
    conflict = (
        "DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone, "
        "handoff_time = EXCLUDED.handoff_time, shift_days = EXCLUDED.shift_days, "
        "anchor_date = EXCLUDED.anchor_date, members = EXCLUDED.members, "
        "fallback_rotation_id = EXCLUDED.fallback_rotation_id, "
        "notifier_ids = EXCLUDED.notifier_ids, updated_at = now()"
        if replace
        else "DO NOTHING"
    )
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.rotations (clinic_id, rotation_id, name, time_zone, "
            "handoff_time, shift_days, anchor_date, members, fallback_rotation_id, notifier_ids) "
            "VALUES (:c, :r, :name, :tz, :handoff, :days, :anchor, CAST(:members AS jsonb), "
            f":fallback, CAST(:notifiers AS jsonb)) ON CONFLICT (clinic_id, rotation_id) {conflict}"
        ),
        {
            "c": clinic_id,
            "r": rotation.rotation_id,
            "name": rotation.name,
            "tz": rotation.time_zone,
            "handoff": rotation.handoff_time,
            "days": rotation.shift_days,
            "anchor": rotation.anchor_date,
            "members": json.dumps(members),
            "fallback": rotation.fallback_rotation_id,
            "notifiers": json.dumps(list(rotation.notifier_ids)),
        },
    )


async def add_override(
    session: AsyncSession, clinic_id: str, rotation_id: str, override: Override, by: str
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.rotation_overrides (override_id, clinic_id, rotation_id, "
            "responder_id, starts_at, ends_at, created_by) VALUES (:o, :c, :r, :who, :s, :e, :by)"
        ),
        {
            "o": override.override_id,
            "c": clinic_id,
            "r": rotation_id,
            "who": override.responder_id,
            "s": override.starts_at,
            "e": override.ends_at,
            "by": by,
        },
    )


async def delete_override(
    session: AsyncSession, clinic_id: str, rotation_id: str, override_id: str
) -> bool:
    row = (
        await session.execute(
            text(
                f"DELETE FROM {SCHEMA}.rotation_overrides WHERE override_id = :o "
                "AND clinic_id = :c AND rotation_id = :r RETURNING override_id"
            ),
            {"o": override_id, "c": clinic_id, "r": rotation_id},
        )
    ).first()
    return row is not None


# --- routing rules -----------------------------------------------------------------------------


async def load_rules(session: AsyncSession, clinic_id: str) -> list[RoutingRule]:
    rows = (
        await session.execute(
            text(
                f"SELECT rule_id, priority, rotation_id, case_types, severities, hours, page "
                f"FROM {SCHEMA}.routing_rules WHERE clinic_id = :c ORDER BY priority, rule_id"
            ),
            {"c": clinic_id},
        )
    ).all()
    return [
        RoutingRule(
            rule_id=r.rule_id,
            priority=r.priority,
            rotation_id=r.rotation_id,
            case_types=frozenset(CaseType(t) for t in r.case_types),
            severities=frozenset(Severity(s) for s in r.severities),
            hours=Hours(r.hours),
            page=PageWhen(r.page),
        )
        for r in rows
    ]


async def replace_rules(
    session: AsyncSession, clinic_id: str, rules: Sequence[RoutingRule]
) -> None:
    await _insert_rules(session, clinic_id, rules, replace=True)


async def _insert_rules(
    session: AsyncSession, clinic_id: str, rules: Sequence[RoutingRule], *, replace: bool
) -> None:
    if replace:
        await session.execute(
            text(f"DELETE FROM {SCHEMA}.routing_rules WHERE clinic_id = :c"), {"c": clinic_id}
        )
    if not rules:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.routing_rules (clinic_id, rule_id, priority, rotation_id, "
            "case_types, severities, hours, page) VALUES (:c, :id, :p, :r, CAST(:types AS jsonb), "
            "CAST(:sev AS jsonb), :hours, :page) ON CONFLICT (clinic_id, rule_id) DO NOTHING"
        ),
        [
            {
                "c": clinic_id,
                "id": rule.rule_id,
                "p": rule.priority,
                "r": rule.rotation_id,
                "types": json.dumps(sorted(t.value for t in rule.case_types)),
                "sev": json.dumps(sorted(s.value for s in rule.severities)),
                "hours": rule.hours.value,
                "page": rule.page.value,
            }
            for rule in rules
        ],
    )
