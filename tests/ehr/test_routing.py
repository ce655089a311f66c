"""The scheduling adapter per clinic: the clinic's own EHR when it has a connection, the
deployment's adapter otherwise, and never another EHR when the connection cannot be used."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.ehr import store
from services.messenger.ehr.client import EhrUnavailable
from services.messenger.ehr.domain.connection import AuthKind, AuthSettings, ConnectionSettings
from services.messenger.ehr.routing import ClinicScheduling
from services.messenger.ehr.scheduling import EhrScheduling
from services.messenger.scheduling.base import SchedulingUnavailable, SlotQuery
from services.messenger.scheduling.sandbox import SandboxScheduling
from shared.events.common import ServiceLine
from tests.ehr.authserver import AuthServer
from tests.ehr.fhirserver import FhirServer
from tests.ehr.fixtures import static_token

pytestmark = pytest.mark.integration
NOW = datetime(2031, 2, 27, tzinfo=UTC)


def query(clinic: str) -> SlotQuery:
    return SlotQuery(clinic, ServiceLine.skin_check, "dr-1", None, NOW)


async def save(
    sessions: async_sessionmaker[AsyncSession], clinic: str, settings: ConnectionSettings
) -> None:
    async with sessions() as session, session.begin():
        await store.save_connection(session, clinic, settings, "test")


def routing(sessions: async_sessionmaker[AsyncSession], env: dict[str, str]) -> ClinicScheduling:
    return ClinicScheduling(
        SandboxScheduling(sessions, "America/Chicago"), sessions, lambda: NOW, env, ttl_s=0
    )


async def test_a_clinic_without_a_connection_uses_the_deployments_adapter(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clinic = f"c-{uuid.uuid4().hex[:6]}"
    slots = await routing(sessions, {}).find_slots(query(clinic))
    assert slots and all(s.slot_id.startswith(f"sbx-{clinic}-") for s in slots)


async def test_a_disabled_connection_falls_back_and_an_unusable_one_never_does(
    sessions: async_sessionmaker[AsyncSession], fhir_server: FhirServer
) -> None:
    clinic = f"c-{uuid.uuid4().hex[:6]}"
    auth = AuthSettings(kind=AuthKind.static, token_env="REVISIT_EHR_X_TOKEN")
    settings = ConnectionSettings(base_url=fhir_server.base, auth=auth, enabled=False)
    await save(sessions, clinic, settings)
    router = routing(sessions, {})
    assert (await router.find_slots(query(clinic)))[0].slot_id.startswith("sbx-")
    await save(sessions, clinic, settings.model_copy(update={"enabled": True}))
    with pytest.raises(SchedulingUnavailable, match="REVISIT_EHR_X_TOKEN is not set"):
        await router.find_slots(query(clinic))


async def test_a_new_connection_reads_and_keeps_what_its_server_can_do(
    sessions: async_sessionmaker[AsyncSession],
    fhir_server: FhirServer,
    auth_server: AuthServer,
) -> None:
    clinic = f"c-{uuid.uuid4().hex[:6]}"
    auth = AuthSettings(kind=AuthKind.static, token_env="REVISIT_EHR_Y_TOKEN")
    await save(sessions, clinic, ConnectionSettings(base_url=fhir_server.readonly, auth=auth))
    router = routing(sessions, {"REVISIT_EHR_Y_TOKEN": static_token(auth_server)})
    ehr = await router.ehr_for(clinic)
    assert isinstance(ehr, EhrScheduling)
    assert ehr.connection.capabilities is not None
    assert not ehr.connection.can_write_appointments()  # the read-only base says so
    async with sessions() as session:
        stored = await store.connection(session, clinic)
    assert stored is not None and stored.capabilities_checked_at == NOW
    assert stored.connection.capabilities == ehr.connection.capabilities


async def test_a_server_that_is_not_fhir_r4_makes_the_clinic_unavailable(
    sessions: async_sessionmaker[AsyncSession], fhir_server: FhirServer
) -> None:
    clinic = f"c-{uuid.uuid4().hex[:6]}"
    await save(sessions, clinic, ConnectionSettings(base_url=f"{fhir_server.origin}/nope/fhir"))
    with pytest.raises(EhrUnavailable, match="not a CapabilityStatement"):
        await routing(sessions, {}).find_slots(query(clinic))
