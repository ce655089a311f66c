"""The practice's EHR scheduling API as a tiny FHIR R4 server, for the messenger's FHIR adapter.

- ``GET [base]/Slot?status=free&start=ge<instant>&_sort=start&_count=<n>`` with optional
  ``schedule.actor=Practitioner/<id>`` (or ``Location/<id>``) and ``service-type=<service
  line>``: a searchset Bundle of free Slots from the ``Calendar``, earliest first.
- ``POST [base]/Appointment`` with ``If-None-Exist: identifier=<system>|<request id>``: a
  conditional create. 201 and the booked Appointment; 200 and the same Appointment when the
  request was made before; 409 when the slot is taken; 400/422 for a body it cannot book.
- ``GET [base]/Appointment/<id>``: an appointment booked here.

Logs carry slot and appointment ids only, never a patient's details.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator.calendar import BookedAppointment, Booking, Calendar, OpenSlot

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
BOOKING_SYSTEM = "urn:revisit:booking-request"
SERVICE_LINE_SYSTEM = "urn:revisit:service-line"
DEFAULT_COUNT = 10
MAX_COUNT = 100

OnBooked = Callable[[BookedAppointment], Awaitable[None] | None]


def _fhir(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers or None)


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    issue = {"severity": "error", "code": code, "diagnostics": text}
    return _fhir({"resourceType": "OperationOutcome", "issue": [issue]}, status)


def _instant(value: str) -> datetime | None:
    # A "+" in an offset arrives as a space when a client did not percent-encode it.
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def slot_resource(slot: OpenSlot) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Slot",
        "id": slot.slot_id,
        "schedule": {"reference": f"Schedule/{slot.provider_id}"},
        "status": "free",
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }
    if slot.service_line:
        coding = {"system": SERVICE_LINE_SYSTEM, "code": slot.service_line}
        resource["serviceType"] = [{"coding": [coding]}]
    return resource


def appointment_resource(appointment: BookedAppointment) -> dict[str, Any]:
    participants = [
        f"Patient/{appointment.patient_id}",
        f"Practitioner/{appointment.provider_id}",
        f"Location/{appointment.location_id}",
    ]
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment.appointment_id,
        "meta": {"versionId": "1"},
        "identifier": [{"system": BOOKING_SYSTEM, "value": appointment.request_id}],
        "status": "booked",
        "slot": [{"reference": f"Slot/{appointment.slot_id}"}],
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "participant": [
            {"actor": {"reference": ref}, "status": "accepted"} for ref in participants
        ],
    }
    if appointment.service_line:
        coding = {"system": SERVICE_LINE_SYSTEM, "code": appointment.service_line}
        resource["serviceType"] = [{"coding": [coding]}]
    return resource


def _request_id(header: str | None, body: dict[str, Any]) -> str | None:
    """The booking request's id: from ``If-None-Exist``, else the body's identifier."""
    if header and header.startswith("identifier="):
        system, _, value = header.removeprefix("identifier=").rpartition("|")
        if value and system in ("", BOOKING_SYSTEM):
            return value
    identifiers = body.get("identifier")
    for identifier in identifiers if isinstance(identifiers, list) else []:
        if isinstance(identifier, dict) and identifier.get("system") == BOOKING_SYSTEM:
            given = identifier.get("value")
            if isinstance(given, str) and given:
                return given
    return None


def _reference(body: dict[str, Any], kind: str) -> str | None:
    """The id of the first participant (or slot, for ``Slot``) of ``kind``."""
    if kind == "Slot":
        refs = [s.get("reference") for s in body.get("slot") or [] if isinstance(s, dict)]
    else:
        refs = [
            (p.get("actor") or {}).get("reference")
            for p in body.get("participant") or []
            if isinstance(p, dict) and isinstance(p.get("actor") or {}, dict)
        ]
    for ref in refs:
        if isinstance(ref, str) and ref.startswith(f"{kind}/") and len(ref) > len(kind) + 1:
            return ref.split("/", 1)[1]
    return None


def scheduling_app(
    calendar: Calendar,
    on_booked: OnBooked,
    *,
    clock: Callable[[], datetime] | None = None,
    token: str = "",
) -> FastAPI:
    """The FHIR scheduling API over ``calendar``; ``on_booked`` hears of each new appointment.

    ``clock``: the simulation's now; a slot that has already started cannot be booked.
    ``token``: the bearer token every request must carry, as a real EHR's API would ask.
    """
    app = FastAPI(title="Simulated practice scheduling (FHIR R4)", docs_url=None, redoc_url=None)
    if token:

        @app.middleware("http")
        async def bearer_only(request: Request, call_next: Any) -> Any:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _outcome(401, "login", "a valid bearer token is required")
            return await call_next(request)

    # Appointment ids on_booked has been (or is being) told about: a retried request after a
    # failed callback tells it again, a plain repeat does not.
    told: set[str] = set()

    async def tell(appointment: BookedAppointment) -> None:
        if appointment.appointment_id in told:
            return
        told.add(appointment.appointment_id)
        try:
            result = on_booked(appointment)
            if inspect.isawaitable(result):
                await result
        except Exception:
            told.discard(appointment.appointment_id)
            log.exception("on_booked failed for appointment %s", appointment.appointment_id)
            raise

    @app.get("/fhir/Slot")
    async def search_slots(request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("status", "free") != "free":
            return _fhir({"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []})
        after = clock() if clock else None
        before: datetime | None = None
        for value in q.getlist("start"):
            prefix, rest = (value[:2], value[2:]) if value[:2].isalpha() else ("ge", value)
            instant = _instant(rest)
            if prefix not in ("ge", "gt", "eq", "lt", "le") or instant is None:
                return _outcome(400, "invalid", "start must be ge<instant with offset>")
            if prefix == "gt":
                instant += timedelta(microseconds=1)
            if prefix in ("lt", "le"):
                before = instant if before is None else min(before, instant)
            else:
                after = instant if after is None else max(after, instant)
        if after is None:
            return _outcome(400, "required", "start=ge<instant> is required")
        try:
            count = min(int(q.get("_count", DEFAULT_COUNT)), MAX_COUNT)
        except ValueError:
            return _outcome(400, "invalid", "_count must be a number")
        actor = q.get("schedule.actor") or ""
        kind, _, actor_id = actor.partition("/")
        if actor and (kind not in ("Practitioner", "Location") or not actor_id):
            return _outcome(400, "invalid", "schedule.actor must be Practitioner/ or Location/")
        service_type = q.get("service-type") or None
        if service_type and "|" in service_type:
            service_type = service_type.rsplit("|", 1)[1]
        slots = calendar.free_slots(
            after=after,
            provider_id=actor_id if kind == "Practitioner" else None,
            location_id=actor_id if kind == "Location" else None,
            service_line=service_type,
            limit=count,
        )
        if before is not None:
            slots = [s for s in slots if s.start <= before]
        base = str(request.base_url).rstrip("/") + "/fhir"
        entries = [
            {
                "fullUrl": f"{base}/Slot/{s.slot_id}",
                "resource": slot_resource(s),
                "search": {"mode": "match"},
            }
            for s in slots
        ]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
        return _fhir({**bundle, "entry": entries})

    @app.post("/fhir/Appointment")
    async def create_appointment(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _outcome(400, "structure", "the body is not JSON")
        if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
            return _outcome(400, "structure", "the body is not an Appointment")
        request_id = _request_id(request.headers.get("if-none-exist"), body)
        if request_id is None:
            return _outcome(400, "required", f"an identifier in {BOOKING_SYSTEM} is required")
        patient_id = _reference(body, "Patient")
        if patient_id is None:
            return _outcome(422, "required", "the Appointment has no Patient participant")
        slot_id = _reference(body, "Slot")
        if slot_id is None:
            return _outcome(422, "required", "the Appointment names no Slot")
        now = clock() if clock else None
        outcome = calendar.book(slot_id, patient_id=patient_id, request_id=request_id, now=now)
        appointment = outcome.appointment
        if outcome.status is Booking.taken:
            log.info("slot %s already taken", slot_id)
            return _outcome(409, "conflict", "the slot is no longer free")
        if appointment is None:
            return _outcome(422, "not-found", "no such open slot")
        await tell(appointment)
        resource = appointment_resource(appointment)
        if outcome.status is Booking.existing:
            return _fhir(resource, 200)
        log.info("booked appointment %s in slot %s", appointment.appointment_id, slot_id)
        base = str(request.base_url).rstrip("/") + "/fhir"
        location = f"{base}/Appointment/{appointment.appointment_id}/_history/1"
        return _fhir(resource, 201, Location=location)

    @app.get("/fhir/Appointment/{appointment_id}")
    async def read_appointment(appointment_id: str) -> JSONResponse:
        appointment = calendar.appointment(appointment_id)
        if appointment is None:
            return _outcome(404, "not-found", "no such appointment")
        return _fhir(appointment_resource(appointment))

    return app


class SchedulingServer:
    """Runs ``scheduling_app`` with uvicorn on 127.0.0.1 inside the current event loop."""

    def __init__(
        self,
        calendar: Calendar,
        on_booked: OnBooked,
        *,
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        token: str = "",
    ) -> None:
        self._app = scheduling_app(calendar, on_booked, clock=clock, token=token)
        self._port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    async def start(self) -> str:
        """Serve, and return the FHIR base URL (``http://127.0.0.1:<port>/fhir``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        self._socket, self._server = sock, server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                await self._task  # it failed to start: raise why
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = self._socket = None
