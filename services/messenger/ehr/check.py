"""``revisit ehr check CLINIC`` (and ``POST /ehr/connections/{clinic}/check``): is this clinic's
EHR connection ready to book? Four steps, each PASS, FAIL (with the reason) or SKIP:

1. capability: ``/metadata`` is an R4 CapabilityStatement; what Revisit may do there.
2. auth: a token is issued (SMART Backend Services, client credentials) or a static one works.
3. slot search: the mapped service types find free slots on the EHR's schedules.
4. dry-run booking: the first slot is free when read again and the Appointment Revisit would
   create is built; sent to ``Appointment/$validate`` when the server has it, never created.

Reasons name fields, statuses and OAuth2 error codes, never a secret or a patient's details.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.messenger.ehr import store
from services.messenger.ehr.auth import AuthSetupError, NoAuth, token_source, wall_clock
from services.messenger.ehr.client import EhrUnavailable, FhirClient
from services.messenger.ehr.domain import resources as fhir
from services.messenger.ehr.domain.capabilities import CapabilityError, read_capabilities
from services.messenger.ehr.domain.connection import Connection
from services.messenger.ehr.domain.smart import TokenRefused
from services.messenger.ehr.scheduling import EhrScheduling
from services.messenger.scheduling.base import Slot, SlotQuery
from shared.events.common import ServiceLine


@dataclass(frozen=True)
class CheckLine:
    step: str
    status: str  # PASS | FAIL | SKIP
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<4} {self.step:<12} {self.detail}"


def _line(step: str, ok: bool, detail: str) -> CheckLine:
    return CheckLine(step, "PASS" if ok else "FAIL", detail)


async def run_check(
    connection: Connection,
    sessions: async_sessionmaker[AsyncSession],
    secrets: Mapping[str, str],
    now: Callable[[], datetime],
    *,
    service_line: ServiceLine | None = None,
    http: httpx.AsyncClient | None = None,
) -> list[CheckLine]:
    owned = http is None
    http = http or httpx.AsyncClient(timeout=10.0)
    try:
        return await _steps(connection, sessions, secrets, now, service_line, http)
    finally:
        if owned:
            await http.aclose()


async def _steps(
    connection: Connection,
    sessions: async_sessionmaker[AsyncSession],
    secrets: Mapping[str, str],
    now: Callable[[], datetime],
    service_line: ServiceLine | None,
    http: httpx.AsyncClient,
) -> list[CheckLine]:
    lines: list[CheckLine] = []
    plain = FhirClient(connection.base_url, NoAuth(), http)
    try:
        capabilities = read_capabilities((await plain.capability_statement()).body)
    except (CapabilityError, EhrUnavailable) as exc:
        return [_line("capability", False, str(exc))]
    allowed = [
        name
        for name, ok in (
            ("Patient search", capabilities.patient_search),
            ("Schedule search", capabilities.schedule_search),
            ("Slot search", capabilities.slot_search),
            ("Appointment create", capabilities.appointment_create),
            ("conditional create", capabilities.appointment_conditional_create),
            ("Communication create", capabilities.communication_create),
        )
        if ok
    ]
    software = f" ({capabilities.software})" if capabilities.software else ""
    detail = f"FHIR {capabilities.fhir_version}{software}: {', '.join(allowed) or 'nothing'}"
    usable = capabilities.slot_search and capabilities.schedule_search
    lines.append(_line("capability", usable, detail + "; ".join(["", *capabilities.notes])))
    async with sessions() as session, session.begin():
        await store.save_capabilities(session, connection.clinic_id, capabilities, now())
    connection = connection.model_copy(update={"capabilities": capabilities})

    try:
        tokens = token_source(connection, http, secrets)
        header = await tokens.authorization()
        kind = connection.settings.auth.kind.value
        lines.append(_line("auth", True, f"{kind}: {'token issued' if header else 'no token'}"))
    except (AuthSetupError, TokenRefused) as exc:
        lines.append(_line("auth", False, str(exc)))
        return [*lines, CheckLine("slot search", "SKIP", "no token"), _skip_booking("no token")]

    adapter = EhrScheduling(
        connection, FhirClient(connection.base_url, tokens, http), sessions, now
    )
    line = service_line or next(iter(connection.mappings.service_types), None)
    if line is None:
        lines.append(_line("slot search", False, "no service type is mapped to a service line"))
        return [*lines, _skip_booking("no service type mapped")]
    query = SlotQuery(connection.clinic_id, line, None, None, after=now() + timedelta(hours=2))
    try:
        slots = await adapter.find_slots(query)
    except EhrUnavailable as exc:
        lines.append(_line("slot search", False, str(exc)))
        return [*lines, _skip_booking("slot search failed")]
    first = slots[0] if slots else None
    found = f"{line.value}: {len(slots)} free slots" + (
        f", first {first.start.isoformat()}" if first else ""
    )
    lines.append(_line("slot search", bool(slots), found))
    if first is None:
        return [*lines, _skip_booking("no free slot to try")]
    lines.append(await _dry_run(adapter, first, line))
    return lines


def _skip_booking(why: str) -> CheckLine:
    return CheckLine("dry-run", "SKIP", why)


async def _dry_run(adapter: EhrScheduling, slot: Slot, line: ServiceLine) -> CheckLine:
    connection = adapter.connection
    if not await adapter.slot_is_free(slot.slot_id):
        return _line("dry-run", False, "the slot found is not free when read again")
    request = adapter.appointment_request(slot, None, "dry-run-patient", "dry-run", line)
    body = fhir.appointment(request)
    if not connection.can_write_appointments():
        return CheckLine(
            "dry-run", "PASS", "no Appointment writes: bookings become staff tasks (by hand)"
        )
    answer = await adapter.client.validate(body)
    if answer.status in (404, 405, 501) or (answer.status == 400 and not _issues(answer.body)):
        return _line("dry-run", True, "Appointment built; the server has no $validate, not sent")
    errors = _issues(answer.body)
    if answer.ok and not errors:
        return _line("dry-run", True, "Appointment accepted by $validate (not created)")
    return _line("dry-run", False, f"$validate: http {answer.status}: {'; '.join(errors)[:300]}")


def _issues(body: object) -> list[str]:
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    return [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
        for i in body.get("issue") or []
        if isinstance(i, dict) and i.get("severity") in ("error", "fatal")
    ]


async def check_clinic(
    database_url: str, clinic_id: str, service_line: ServiceLine | None = None
) -> list[CheckLine] | None:
    """The command line's check: the connection from the database, secrets from this process's
    environment (run it where the messenger runs). None when the clinic has no connection."""
    engine = create_async_engine(database_url, hide_parameters=True)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            found = await store.connection(session, clinic_id)
        if found is None:
            return None
        return await run_check(
            found.connection, sessions, os.environ, wall_clock, service_line=service_line
        )
    finally:
        await engine.dispose()
