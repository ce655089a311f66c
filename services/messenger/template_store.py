"""Template versions in Postgres: the default library, practice versions, approval.

Only an approved version is sent. Approving a version retires the one it replaces (at most one
approved version per clinic, workflow, step, channel, tone and language). A clinic's own
approved version wins over the shared library's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain import freed_slot_words
from services.messenger.domain.library import LIBRARY_AUTHOR, default_library
from services.messenger.domain.templates import Template
from services.messenger.repository import SCHEMA
from shared.events.common import Channel, ClinicalUrgency, Purpose
from shared.events.outreach import Tone

COLUMNS = (
    "template_id, clinic_id, workflow_key, step, channel, tone, language, version, subject, body, "
    "purpose, urgency, status, created_by, created_at, approved_by, approved_at"
)


def to_template(m: Any) -> Template:
    return Template(
        workflow_key=m["workflow_key"],
        step=m["step"],
        channel=Channel(m["channel"]),
        tone=Tone(m["tone"]),
        language=m["language"],
        body=m["body"],
        subject=m["subject"],
        purpose=Purpose(m["purpose"]),
        urgency=ClinicalUrgency(m["urgency"]),
        version=m["version"],
        template_id=m["template_id"],
    )


async def seed_default_library(session: AsyncSession, now: datetime) -> int:
    """Insert (approved) every default template the database does not hold yet.

    A library template whose words changed in code becomes a new approved version, unless a
    person has approved another version for that key since (their choice stands).
    """
    existing = {
        (r[0], r[1], r[2], r[3], r[4]): (r[5], r[6], r[7], r[8], r[9])
        for r in (
            await session.execute(
                text(
                    f"SELECT DISTINCT ON (workflow_key, step, channel, tone, language) "
                    "workflow_key, step, channel, tone, language, version, body, "
                    "coalesce(subject, ''), created_by, status FROM "
                    f"{SCHEMA}.templates WHERE clinic_id IS NULL ORDER BY workflow_key, step, "
                    "channel, tone, language, version DESC"
                )
            )
        ).all()
    }
    added = 0
    for t in [*default_library(), *freed_slot_words.templates()]:
        key = (t.workflow_key, t.step, t.channel.value, t.tone.value, t.language)
        latest = existing.get(key)
        if latest is not None:
            version, body, subject, author, status = latest
            if (body, subject) == (t.body, t.subject or "") or author != LIBRARY_AUTHOR:
                continue
            if status != "approved":
                continue
            await _retire(session, None, t)
            t = t.with_version(version + 1)
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.templates (clinic_id, workflow_key, step, channel, tone, "
                "language, version, subject, body, purpose, urgency, status, created_by, "
                "approved_by, approved_at) VALUES (NULL, :w, :s, :c, :t, :l, :v, :subj, :b, :p, "
                ":u, 'approved', :by, :by, :at) ON CONFLICT DO NOTHING"
            ),
            {
                "w": t.workflow_key,
                "s": t.step,
                "c": t.channel.value,
                "t": t.tone.value,
                "l": t.language,
                "v": t.version,
                "subj": t.subject,
                "b": t.body,
                "p": t.purpose.value,
                "u": t.urgency.value,
                "by": LIBRARY_AUTHOR,
                "at": now,
            },
        )
        added += 1
    return added


async def _retire(session: AsyncSession, clinic_id: str | None, t: Template) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.templates SET status = 'retired' WHERE status = 'approved' AND "
            "coalesce(clinic_id, '') = coalesce(CAST(:c AS text), '') AND workflow_key = :w "
            "AND step = :s AND channel = :ch AND tone = :t AND language = :l"
        ),
        {
            "c": clinic_id,
            "w": t.workflow_key,
            "s": t.step,
            "ch": t.channel.value,
            "t": t.tone.value,
            "l": t.language,
        },
    )


async def approved_for(
    session: AsyncSession, clinic_ids: Iterable[str], workflow_keys: Iterable[str]
) -> dict[tuple[str | None, str, int, str], list[Template]]:
    """Approved templates for these clinics (and the shared library), keyed by
    (clinic or None, workflow, step, channel); each list holds every tone and language."""
    rows = (
        await session.execute(
            text(
                f"SELECT {COLUMNS} FROM {SCHEMA}.templates WHERE status = 'approved' AND "
                "(clinic_id IS NULL OR clinic_id = ANY(:c)) AND workflow_key = ANY(:w)"
            ),
            {"c": sorted(set(clinic_ids)), "w": sorted(set(workflow_keys))},
        )
    ).all()
    out: dict[tuple[str | None, str, int, str], list[Template]] = {}
    for r in rows:
        m = r._mapping
        out.setdefault((m["clinic_id"], m["workflow_key"], m["step"], m["channel"]), []).append(
            to_template(m)
        )
    return out


async def create(
    session: AsyncSession, clinic_id: str | None, t: Template, created_by: str
) -> dict[str, Any]:
    version = (
        await session.execute(
            text(
                f"SELECT coalesce(max(version), 0) + 1 FROM {SCHEMA}.templates WHERE "
                "coalesce(clinic_id, '') = coalesce(CAST(:c AS text), '') AND workflow_key = :w "
                "AND step = :s AND channel = :ch AND tone = :t AND language = :l"
            ),
            {
                "c": clinic_id,
                "w": t.workflow_key,
                "s": t.step,
                "ch": t.channel.value,
                "t": t.tone.value,
                "l": t.language,
            },
        )
    ).scalar_one()
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.templates (clinic_id, workflow_key, step, channel, tone, "
                "language, version, subject, body, purpose, urgency, status, created_by) VALUES "
                "(:c, :w, :s, :ch, :t, :l, :v, :subj, :b, :p, :u, 'draft', :by) "
                f"RETURNING {COLUMNS}"
            ),
            {
                "c": clinic_id,
                "w": t.workflow_key,
                "s": t.step,
                "ch": t.channel.value,
                "t": t.tone.value,
                "l": t.language,
                "v": version,
                "subj": t.subject,
                "b": t.body,
                "p": t.purpose.value,
                "u": t.urgency.value,
                "by": created_by,
            },
        )
    ).one()
    return dict(row._mapping)


async def get(session: AsyncSession, template_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT {COLUMNS} FROM {SCHEMA}.templates WHERE template_id = :i"),
            {"i": template_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def listing(
    session: AsyncSession,
    clinic_id: str | None,
    *,
    workflow_key: str | None = None,
    status: str | None = None,
    include_library: bool = True,
) -> list[dict[str, Any]]:
    where = ["(clinic_id = :c" + (" OR clinic_id IS NULL)" if include_library else ")")]
    if clinic_id is None:
        where = ["clinic_id IS NULL"]
    if workflow_key:
        where.append("workflow_key = :w")
    if status:
        where.append("status = :st")
    rows = (
        await session.execute(
            text(
                f"SELECT {COLUMNS} FROM {SCHEMA}.templates WHERE {' AND '.join(where)} "
                "ORDER BY workflow_key, step, channel, language, tone, version"
            ),
            {"c": clinic_id, "w": workflow_key, "st": status},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def update_draft(
    session: AsyncSession, template_id: int, *, body: str, subject: str | None
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.templates SET body = :b, subject = :s WHERE template_id = :i "
                f"AND status = 'draft' RETURNING {COLUMNS}"
            ),
            {"b": body, "s": subject, "i": template_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def approve(
    session: AsyncSession, template_id: int, approved_by: str, now: datetime
) -> dict[str, Any] | None:
    current = await get(session, template_id)
    if current is None or current["status"] != "draft":
        return None
    await _retire(session, current["clinic_id"], to_template(current))
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.templates SET status = 'approved', approved_by = :by, "
                f"approved_at = :at WHERE template_id = :i RETURNING {COLUMNS}"
            ),
            {"by": approved_by, "at": now, "i": template_id},
        )
    ).one()
    return dict(row._mapping)


async def retire(session: AsyncSession, template_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.templates SET status = 'retired' WHERE template_id = :i "
                f"AND status <> 'retired' RETURNING {COLUMNS}"
            ),
            {"i": template_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def delete_draft(session: AsyncSession, template_id: int) -> bool:
    row = (
        await session.execute(
            text(
                f"DELETE FROM {SCHEMA}.templates WHERE template_id = :i AND status = 'draft' "
                "RETURNING 1"
            ),
            {"i": template_id},
        )
    ).first()
    return row is not None
