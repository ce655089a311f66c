"""``GET /segments/{segment}/preview``: who will become due within ``days``, why, and the exact
words each would receive (nothing is sent).

The words are the sequencer's to plan and the messenger's to say: the preview hands each would-be
primary need to the sequencer's ``POST /previews/eligibility`` (which asks the messenger) with
the caller's own credential. When they cannot answer, who and why are still shown, and why the
words are missing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from sqlalchemy import text

from services.segmenter.domain.memberships import HOLD_RECOVERY, held_behind
from services.segmenter.repository import SCHEMA
from shared.auth import CurrentPrincipal, require_clinic
from shared.events.common import Segment
from shared.runtime import Runtime

router = APIRouter(tags=["segmenter"])
SEQUENCER_URL_EXTRA = "segmenter_sequencer_url"
PRIMARY = "becomes the primary segment"
TIMEOUT_S = 15.0


@router.get(
    "/segments/{segment}/preview",
    summary="Who will become due in this segment within `days`, why, and in which words "
    "(nothing is sent)",
)
async def preview(
    request: Request,
    segment: Segment,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str, Query(min_length=1, max_length=64)],
    days: Annotated[int, Query(ge=1, le=730)] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    words: Annotated[bool, Query(description="the messages each would receive")] = True,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    runtime: Runtime = request.app.state.runtime
    now = runtime.clock.now()
    until = now + timedelta(days=days)
    where = (
        "m.clinic_id = :c AND m.segment = :s AND m.status = 'upcoming' AND m.surface_at <= :until"
    )
    params = {"c": clinic_id, "s": segment.value, "until": until}
    async with runtime.sessions() as session:
        total = (
            await session.execute(
                text(f"SELECT count(*) FROM {SCHEMA}.memberships m WHERE {where}"), params
            )
        ).scalar_one()
        rows = (
            await session.execute(
                text(
                    "SELECT m.patient_key, m.need_id, m.surface_at, m.expires_at, m.rank, "
                    "m.fields, p.recovery_hold, o.segment AS primary_segment, "
                    "o.rank AS primary_rank, o.surface_at AS primary_surface, "
                    "o.need_id AS primary_id "
                    f"FROM {SCHEMA}.memberships m "
                    f"JOIN {SCHEMA}.patients p ON p.patient_key = m.patient_key "
                    f"LEFT JOIN {SCHEMA}.memberships o ON o.patient_key = m.patient_key "
                    f"AND o.status = 'open' WHERE {where} "
                    "ORDER BY m.surface_at, m.need_id LIMIT :limit"
                ),
                {**params, "limit": limit},
            )
        ).all()
    patients = []
    for r in rows:
        if r.recovery_hold:
            outlook = HOLD_RECOVERY
        elif r.primary_id is not None and (r.primary_rank, r.primary_surface, r.primary_id) < (
            r.rank,
            r.surface_at,
            r.need_id,
        ):
            outlook = held_behind(r.primary_segment)
        else:
            outlook = PRIMARY
        f = r.fields
        patients.append(
            {
                "patient_key": r.patient_key,
                "need_id": r.need_id,
                "surfaces_at": r.surface_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "reason": f.get("reason"),
                "service_line": f.get("service_line"),
                "source": f.get("source_record"),
                "documented": f.get("documented"),
                "window": {k: f.get(k) for k in ("opens_on", "closes_on", "due_at")},
                "clinical_urgency": f.get("clinical_urgency"),
                "needs_marketing_consent": f.get("needs_marketing_consent"),
                "outlook": outlook,
                "_fields": f,
            }
        )
    missing = await _messages(runtime, request, patients) if words else None
    for p in patients:
        p.pop("_fields")
    return {
        "segment": segment.value,
        "clinic_id": clinic_id,
        "as_of": now.isoformat(),
        "until": until.isoformat(),
        "total": total,
        "patients": patients,
        **({"messages_missing": missing} if missing else {}),
    }


async def _messages(
    runtime: Runtime, request: Request, patients: list[dict[str, Any]]
) -> str | None:
    """Attach to each would-be primary need the steps it would start, with their words."""
    primary = [p for p in patients if p["outlook"] == PRIMARY]
    if not primary:
        return None
    items = [
        {
            "patient_key": p["patient_key"],
            "at": p["surfaces_at"],
            "eligibility": {**p["_fields"], "eligibility_id": p["need_id"]},
        }
        for p in primary
    ]
    base = str(runtime.extras.get(SEQUENCER_URL_EXTRA, "")).rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.post(
                f"{base}/previews/eligibility",
                json={"items": items},
                headers={"Authorization": request.headers.get("authorization", "")},
            )
    except httpx.HTTPError as exc:
        return f"the sequencer could not be reached ({type(exc).__name__})"
    if response.status_code != 200:
        return f"the sequencer answered {response.status_code}"
    steps: list[dict[str, Any]] = response.json().get("steps", [])
    for p in primary:
        p["messages"] = [s for s in steps if s.get("patient_key") == p["patient_key"]]
    return None
