"""EHR tests: the local authorisation server, the Medplum FHIR server and a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from revisit.migrate import migrate_all
from tests.ehr.fixtures import auth_server, fhir_server

__all__ = ["auth_server", "fhir_server"]


@pytest.fixture(scope="session")
async def sessions(pg: Any) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate_all(pg.dsn)
    engine = create_async_engine(pg.dsn)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
