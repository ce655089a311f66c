"""Clinic rules, states' allowed hours and workflow definitions as stored by admins."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain.workflows import Workflow
from services.sequencer.policy import (
    ClinicRules,
    StateHours,
    WorkflowDefinition,
    default_state_hours,
)
from services.sequencer.repository.state import SCHEMA

ALL_CLINICS = "*"


async def clinic_rules(session: AsyncSession, clinics: Iterable[str]) -> dict[str, ClinicRules]:
    rows = await session.execute(
        text(f"SELECT clinic_id, rules FROM {SCHEMA}.clinic_rules WHERE clinic_id = ANY(:c)"),
        {"c": list(set(clinics))},
    )
    return {r.clinic_id: ClinicRules.model_validate(r.rules) for r in rows}


async def all_clinic_rules(session: AsyncSession) -> dict[str, ClinicRules]:
    rows = await session.execute(text(f"SELECT clinic_id, rules FROM {SCHEMA}.clinic_rules"))
    return {r.clinic_id: ClinicRules.model_validate(r.rules) for r in rows}


async def put_clinic_rules(
    session: AsyncSession, clinic_id: str, rules: ClinicRules, by: str, at: datetime
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.clinic_rules (clinic_id, rules, updated_by, updated_at) "
            "VALUES (:c, CAST(:r AS jsonb), :by, :at) ON CONFLICT (clinic_id) DO UPDATE SET "
            "rules = EXCLUDED.rules, updated_by = EXCLUDED.updated_by, "
            "updated_at = EXCLUDED.updated_at"
        ),
        {"c": clinic_id, "r": rules.model_dump_json(exclude_none=True), "by": by, "at": at},
    )


async def state_hours(session: AsyncSession) -> dict[str, StateHours]:
    hours = default_state_hours()
    rows = await session.execute(
        text(f"SELECT state_code, allowed_from, allowed_until, note FROM {SCHEMA}.state_hours")
    )
    for r in rows:
        hours[r.state_code] = StateHours(
            allowed_from=r.allowed_from, allowed_until=r.allowed_until, note=r.note
        )
    return hours


async def put_state_hours(
    session: AsyncSession, code: str, hours: StateHours, by: str, at: datetime
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.state_hours (state_code, allowed_from, allowed_until, note, "
            "updated_by, updated_at) VALUES (:s, :a, :b, :n, :by, :at) ON CONFLICT (state_code) "
            "DO UPDATE SET allowed_from = EXCLUDED.allowed_from, allowed_until = "
            "EXCLUDED.allowed_until, note = EXCLUDED.note, updated_by = EXCLUDED.updated_by, "
            "updated_at = EXCLUDED.updated_at"
        ),
        {
            "s": code,
            "a": hours.allowed_from,
            "b": hours.allowed_until,
            "n": hours.note,
            "by": by,
            "at": at,
        },
    )


async def workflow_overrides(
    session: AsyncSession, clinics: Iterable[str]
) -> dict[str, list[Workflow]]:
    """Per clinic, its workflows after the all-clinic ones (a clinic's own wins)."""
    wanted = list(set(clinics))
    rows = (
        await session.execute(
            text(
                f"SELECT clinic_id, workflow_key, definition FROM {SCHEMA}.workflows "
                "WHERE clinic_id = ANY(:c) ORDER BY clinic_id = :all DESC, workflow_key"
            ),
            {"c": [*wanted, ALL_CLINICS], "all": ALL_CLINICS},
        )
    ).all()
    shared = [
        WorkflowDefinition.model_validate(r.definition).to_workflow(r.workflow_key)
        for r in rows
        if r.clinic_id == ALL_CLINICS
    ]
    out: dict[str, list[Workflow]] = {c: list(shared) for c in wanted}
    for r in rows:
        if r.clinic_id != ALL_CLINICS:
            wf = WorkflowDefinition.model_validate(r.definition).to_workflow(r.workflow_key)
            out.setdefault(r.clinic_id, list(shared)).append(wf)
    return out


async def put_workflow(
    session: AsyncSession,
    clinic_id: str,
    key: str,
    definition: WorkflowDefinition,
    by: str,
    at: datetime,
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.workflows (clinic_id, workflow_key, definition, updated_by, "
            "updated_at) VALUES (:c, :k, CAST(:d AS jsonb), :by, :at) ON CONFLICT "
            "(clinic_id, workflow_key) DO UPDATE SET definition = EXCLUDED.definition, "
            "updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at"
        ),
        {"c": clinic_id, "k": key, "d": definition.model_dump_json(), "by": by, "at": at},
    )


async def delete_workflow(session: AsyncSession, clinic_id: str, key: str) -> bool:
    result = await session.execute(
        text(f"DELETE FROM {SCHEMA}.workflows WHERE clinic_id = :c AND workflow_key = :k"),
        {"c": clinic_id, "k": key},
    )
    return bool(getattr(result, "rowcount", 0))
