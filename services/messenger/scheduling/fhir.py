"""FHIR R4 scheduling over httpx: ``GET Slot`` search and conditional ``POST Appointment``.

- Slots: ``GET [base]/Slot?status=free&start=ge<instant>&_sort=start&_count=<n>``, narrowed by
  ``schedule.actor=Practitioner/<provider>`` (or ``Location/<location>``) and
  ``service-type=<service line>`` when known. The service-type code is Revisit's service line
  (``skin_check``, ``laser`` ...); map it in the EHR or leave it out with
  ``filter_service_type=False``.
- Booking: ``POST [base]/Appointment`` with ``If-None-Exist: identifier=<system>|<request id>``
  (a conditional create: asking twice books once), status ``proposed``, the slot, the patient
  and the practitioner. 201/200 is booked; 409/412 (or an OperationOutcome saying conflict)
  means the slot was taken; any other 4xx is refused; network errors and 5xx are retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    SchedulingUnavailable,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine

BOOKING_SYSTEM = "urn:revisit:booking-request"
FHIR_JSON = "application/fhir+json"


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ref_id(reference: str | None, kind: str) -> str | None:
    if reference and reference.startswith(f"{kind}/"):
        return reference.split("/", 1)[1]
    return None


class FhirScheduling(SchedulingAdapter):
    name = "fhir"

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout_s: float = 10.0,
        filter_service_type: bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._base = base_url.rstrip("/")
        self._filter_service_type = filter_service_type
        self._client = client or httpx.AsyncClient(headers=headers, timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        params: dict[str, str] = {
            "status": "free",
            "start": "ge" + query.after.isoformat(),
            "_sort": "start",
            "_count": str(max(query.limit * 3, query.limit)),
        }
        if query.provider_id:
            params["schedule.actor"] = f"Practitioner/{query.provider_id}"
        elif query.location_id:
            params["schedule.actor"] = f"Location/{query.location_id}"
        if self._filter_service_type:
            params["service-type"] = query.service_line.value
        try:
            response = await self._client.get(f"{self._base}/Slot", params=params)
        except httpx.HTTPError as exc:
            raise SchedulingUnavailable(type(exc).__name__) from None
        if response.status_code >= 500:
            raise SchedulingUnavailable(f"http {response.status_code}")
        if response.status_code != 200:
            return []
        slots = []
        for entry in _json(response).get("entry") or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") != "Slot" or resource.get("status") != "free":
                continue
            start = _instant(resource.get("start"))
            if start is None or start <= query.after:
                continue
            slots.append(
                Slot(
                    slot_id=str(resource.get("id")),
                    start=start,
                    end=_instant(resource.get("end")),
                    provider_id=query.provider_id,
                    location_id=query.location_id,
                )
            )
        slots.sort(key=lambda s: s.start)
        return slots[: query.limit]

    def appointment(
        self, slot: Slot, *, patient_id: str, booking_request_id: str
    ) -> dict[str, Any]:
        participants: list[dict[str, Any]] = [
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}
        ]
        if slot.provider_id:
            participants.append(
                {
                    "actor": {"reference": f"Practitioner/{slot.provider_id}"},
                    "status": "needs-action",
                }
            )
        if slot.location_id:
            participants.append(
                {"actor": {"reference": f"Location/{slot.location_id}"}, "status": "needs-action"}
            )
        body: dict[str, Any] = {
            "resourceType": "Appointment",
            "status": "proposed",
            "identifier": [{"system": BOOKING_SYSTEM, "value": booking_request_id}],
            "slot": [{"reference": f"Slot/{slot.slot_id}"}],
            "start": slot.start.isoformat(),
            "participant": participants,
            "comment": "Requested by the patient by text message through Revisit",
        }
        if slot.end is not None:
            body["end"] = slot.end.isoformat()
        return body

    async def book(
        self,
        slot: Slot,
        *,
        clinic_id: str,
        patient_id: str,
        booking_request_id: str,
        service_line: ServiceLine | None = None,
    ) -> BookingResult:
        body = self.appointment(slot, patient_id=patient_id, booking_request_id=booking_request_id)
        try:
            response = await self._client.post(
                f"{self._base}/Appointment",
                json=body,
                headers={
                    "Content-Type": FHIR_JSON,
                    "If-None-Exist": f"identifier={BOOKING_SYSTEM}|{booking_request_id}",
                },
            )
        except httpx.HTTPError as exc:
            raise SchedulingUnavailable(type(exc).__name__) from None
        status = response.status_code
        if status in (200, 201):
            appointment_id = str(_json(response).get("id") or "") or _location_id(response)
            return BookingResult(Booked.booked, appointment_id or None)
        if status in (409, 412):
            return BookingResult(Booked.taken)
        if status >= 500:
            raise SchedulingUnavailable(f"http {status}")
        return BookingResult(Booked.refused)


def _location_id(response: httpx.Response) -> str:
    location = response.headers.get("location") or response.headers.get("content-location") or ""
    parts = location.split("/_history")[0].rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Appointment" else ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
