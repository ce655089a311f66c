"""What every report takes: who asks (any staff role), which clinics, which dates, how grouped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.repository.reports import Filters
from services.metrics.settings import MetricsContext, MetricsSettings
from shared.auth import CurrentPrincipal, require_clinic
from shared.events.common import Segment

ClinicQuery = Annotated[
    list[str] | None,
    Query(
        alias="clinic_id",
        description="Only these clinics (repeat the parameter); default: every clinic the "
        "credential covers",
    ),
]
FromQuery = Annotated[
    date | None, Query(alias="from", description="First day included (UTC), YYYY-MM-DD")
]
ToQuery = Annotated[date | None, Query(alias="to", description="Last day included (UTC)")]
SegmentQuery = Annotated[Segment | None, Query(description="Only this segment")]
WorkflowQuery = Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
PilotQuery = Annotated[str | None, Query(alias="pilot_id", max_length=128, pattern=r"^\S+$")]


def report_filters(
    principal: CurrentPrincipal,
    clinic_id: ClinicQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
    segment: SegmentQuery = None,
    workflow: WorkflowQuery = None,
    pilot: PilotQuery = None,
) -> Filters:
    """Filters limited to the caller's clinics; naming a clinic outside them is a 403."""
    if start is not None and end is not None and start > end:
        raise HTTPException(422, "from is after to")
    if clinic_id:
        for clinic in clinic_id:
            require_clinic(principal, clinic)
        clinics: list[str] | None = sorted(set(clinic_id))
    else:
        clinics = None if principal.clinics is None else sorted(principal.clinics)
    return Filters(
        clinics=clinics,
        start=start,
        end=end,
        segment=segment.value if segment else None,
        workflow=workflow,
        pilot_id=pilot,
    )


ReportFilters = Annotated[Filters, Depends(report_filters)]


def group_by(allowed: tuple[str, ...], default: str) -> Any:
    """A ``group_by`` query parameter: comma-separated dimensions from ``allowed``."""

    def parse(group_by: str = default) -> list[str]:
        dims = [d.strip() for d in group_by.split(",") if d.strip()]
        unknown = [d for d in dims if d not in allowed]
        if unknown:
            raise HTTPException(
                422, f"group_by: unknown dimension {unknown[0]!r}; use {', '.join(allowed)}"
            )
        return list(dict.fromkeys(dims))

    # Set as objects: postponed (string) annotations could not see ``allowed``.
    parse.__annotations__ = {
        "group_by": Annotated[
            str, Query(description=f"Comma-separated, from: {', '.join(allowed)}", max_length=200)
        ],
        "return": list[str],
    }
    return Depends(parse)


@dataclass(frozen=True)
class Context:
    sessions: async_sessionmaker[AsyncSession]
    settings: MetricsSettings


def _context(request: Request) -> Context:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(503, "the metrics service is starting")
    found = runtime.context
    settings = found.settings if isinstance(found, MetricsContext) else MetricsSettings()
    return Context(runtime.sessions, settings)


ContextDep = Annotated[Context, Depends(_context)]
