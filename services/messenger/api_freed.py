"""The waitlist (patients who asked for an earlier time), the practice's service prices (what a
refilled slot keeps) and the freed slots with their offers, for staff. Clinic-scoped; patient
keys only, never contact details."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.messenger import freed_store, waitlist_store
from shared.auth import CurrentPrincipal, Operator, require_clinic
from shared.events.common import Id, ServiceLine
from shared.runtime import Runtime

router = APIRouter(tags=["freed slots"])
SHOWN = (
    "offer_id",
    "appointment_id",
    "slot_id",
    "start",
    "service_line",
    "provider_id",
    "location_id",
    "status",
    "batches",
    "freed_at",
    "refilled_at",
    "price_cents",
    "currency",
    "offers",
)
PatientKey = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^[^:\s]+:\S+$")]


class WaitlistEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_key: PatientKey
    service_line: ServiceLine | None = Field(None, description="None: any service")
    provider_id: Id | None = Field(None, description="None: any provider")


class WaitlistEntry(BaseModel):
    entry_id: str
    clinic_id: str
    patient_key: str
    service_line: str | None
    provider_id: str | None
    added_at: datetime
    added_by: str
    removed_at: datetime | None = None


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_cents: Annotated[int, Field(ge=0, le=10_000_000)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _entry(row: dict[str, Any]) -> WaitlistEntry:
    return WaitlistEntry(**{k: row[k] for k in WaitlistEntry.model_fields})


@router.get("/waitlist/{clinic_id}")
async def list_waitlist(
    clinic_id: str, request: Request, principal: CurrentPrincipal
) -> list[WaitlistEntry]:
    """Who is waiting for an earlier time, longest first (the order they are offered in)."""
    require_clinic(principal, clinic_id)
    async with _runtime(request).sessions() as session:
        return [_entry(r) for r in await waitlist_store.waitlist(session, clinic_id)]


@router.post("/waitlist/{clinic_id}", status_code=201)
async def add_to_waitlist(
    clinic_id: str, body: WaitlistEntryIn, request: Request, principal: Operator
) -> dict[str, Any]:
    """Put a patient who asked for an earlier time on the waitlist (adding them twice for the
    same service and provider returns the entry they already have, ``created: false``)."""
    require_clinic(principal, clinic_id)
    if body.patient_key.split(":", 1)[0] != clinic_id:
        raise HTTPException(422, "patient_key: the patient belongs to another clinic")
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        row, created = await waitlist_store.add_to_waitlist(
            session,
            clinic_id=clinic_id,
            patient_key=body.patient_key,
            service_line=body.service_line.value if body.service_line else None,
            provider_id=body.provider_id,
            at=runtime.clock.now(),
            by=principal.subject,
        )
    return {"entry": _entry(row).model_dump(mode="json"), "created": created}


@router.delete("/waitlist/{clinic_id}/{entry_id}")
async def remove_from_waitlist(
    clinic_id: str, entry_id: str, request: Request, principal: Operator
) -> WaitlistEntry:
    """Take an entry off the waitlist (kept, with who removed it and when)."""
    require_clinic(principal, clinic_id)
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        found = await waitlist_store.waitlist_entry(session, entry_id)
        if found is None or found["clinic_id"] != clinic_id:
            raise HTTPException(404, "no such waitlist entry in this clinic")
        row = await waitlist_store.remove_from_waitlist(
            session, entry_id, at=runtime.clock.now(), by=principal.subject
        )
    assert row is not None
    return _entry(row)


@router.put("/practices/{clinic_id}/prices/{service_line}")
async def set_price(
    clinic_id: str, service_line: ServiceLine, body: PriceIn, request: Request, principal: Operator
) -> dict[str, Any]:
    """The practice's price for a service: what a refilled slot of it keeps (revenue kept)."""
    require_clinic(principal, clinic_id)
    async with _runtime(request).sessions() as session, session.begin():
        await waitlist_store.set_price(
            session, clinic_id, service_line.value, body.price_cents, body.currency
        )
    return {"clinic_id": clinic_id, "service_line": service_line.value, **body.model_dump()}


@router.get("/freed-slots/{clinic_id}")
async def freed_slots(
    clinic_id: str,
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Freed slots, newest first: status (looking, offering, claimed, refilled, taken,
    not_free, closed), how many patients were offered each, and each offer's state."""
    require_clinic(principal, clinic_id)
    async with _runtime(request).sessions() as session:
        rows = await freed_store.freed_listing(session, clinic_id, limit)
        for row in rows:
            row["offers"] = [
                {k: o[k] for k in ("patient_key", "batch", "source", "channel", "status")}
                for o in await freed_store.offers(session, row["offer_id"])
            ]
    return {"freed_slots": [{k: r[k] for k in SHOWN} for r in rows]}
