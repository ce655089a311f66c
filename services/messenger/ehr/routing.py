"""The scheduling adapter chosen per clinic: the clinic's EHR connection when it has one (and it
is enabled), else the deployment-wide adapter from the settings (the sandbox, or the FHIR
server named by ``REVISIT_MESSENGER_FHIR_BASE_URL``), so a deployment without connections
behaves as before.

Connections are read from the database and kept for ``ttl_s`` seconds; a changed connection
(new ``updated_at``) gets a new client and token source. A connection whose secret variable is
missing is an error for that clinic (never a silent fall back to another EHR).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.ehr import store
from services.messenger.ehr.auth import AuthSetupError, token_source
from services.messenger.ehr.client import EhrUnavailable, FhirClient
from services.messenger.ehr.domain.capabilities import CapabilityError, read_capabilities
from services.messenger.ehr.domain.connection import Connection
from services.messenger.ehr.scheduling import EhrScheduling
from services.messenger.scheduling.base import (
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine

log = logging.getLogger(__name__)
CAPABILITIES_FOR = timedelta(hours=24)


@dataclass
class _Cached:
    until: float
    updated_at: datetime | None
    adapter: EhrScheduling | None


class ClinicScheduling(SchedulingAdapter):
    name = "per-clinic"

    def __init__(
        self,
        fallback: SchedulingAdapter,
        sessions: async_sessionmaker[AsyncSession],
        now: Callable[[], datetime],
        secrets: Mapping[str, str],
        *,
        ttl_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.fallback = fallback
        self._sessions = sessions
        self._now = now
        self._secrets = secrets
        self._ttl = ttl_s
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._cache: dict[str, _Cached] = {}

    def forget(self, clinic_id: str | None = None) -> None:
        """Read the connection again at next use (the API calls this after a change)."""
        if clinic_id is None:
            self._cache.clear()
        else:
            self._cache.pop(clinic_id, None)

    async def ehr_for(self, clinic_id: str) -> EhrScheduling | None:
        """The clinic's EHR adapter, or None when it has no enabled connection."""
        cached = self._cache.get(clinic_id)
        if cached is not None and cached.until > time.monotonic():
            return cached.adapter
        async with self._sessions() as session:
            found = await store.connection(session, clinic_id)
        adapter = None
        if found is not None and found.connection.settings.enabled:
            if cached is not None and cached.updated_at == found.updated_at and cached.adapter:
                adapter = cached.adapter
            else:
                try:
                    tokens = token_source(found.connection, self._http, self._secrets)
                except AuthSetupError as exc:
                    log.warning("ehr connection not usable", extra={"clinic_id": clinic_id})
                    raise EhrUnavailable(f"connection of {clinic_id}: {exc}") from None
                client = FhirClient(found.connection.base_url, tokens, self._http)
                connection = await self._with_capabilities(found, client)
                adapter = EhrScheduling(connection, client, self._sessions, self._now)
        self._cache[clinic_id] = _Cached(
            time.monotonic() + self._ttl, found.updated_at if found else None, adapter
        )
        return adapter

    async def _with_capabilities(
        self, found: store.StoredConnection, client: FhirClient
    ) -> Connection:
        """The connection with what its server can do, read from /metadata when not known yet
        (a new connection) or older than a day, and stored."""
        now = self._now()
        checked = found.capabilities_checked_at
        if found.connection.capabilities and checked and now - checked < CAPABILITIES_FOR:
            return found.connection
        answer = await client.capability_statement()
        try:
            capabilities = read_capabilities(answer.body)
        except CapabilityError as exc:
            raise EhrUnavailable(
                f"CapabilityStatement of {found.connection.clinic_id}: {exc}"
            ) from None
        async with self._sessions() as session, session.begin():
            await store.save_capabilities(session, found.connection.clinic_id, capabilities, now)
        return found.connection.model_copy(update={"capabilities": capabilities})

    async def adapter_for(self, clinic_id: str) -> SchedulingAdapter:
        return await self.ehr_for(clinic_id) or self.fallback

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        return await (await self.adapter_for(query.clinic_id)).find_slots(query)

    async def book(
        self,
        slot: Slot,
        *,
        clinic_id: str,
        patient_id: str,
        booking_request_id: str,
        service_line: ServiceLine | None = None,
    ) -> BookingResult:
        adapter = await self.adapter_for(clinic_id)
        return await adapter.book(
            slot,
            clinic_id=clinic_id,
            patient_id=patient_id,
            booking_request_id=booking_request_id,
            service_line=service_line,
        )

    async def freed_slot(self, query: SlotQuery, start: datetime) -> Slot | None:
        return await (await self.adapter_for(query.clinic_id)).freed_slot(query, start)

    async def close(self) -> None:
        await self._http.aclose()
        await self.fallback.close()
