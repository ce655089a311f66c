"""Fixtures for the segmenter's integration tests: a migrated database, created topics.

The database and broker are the session's (tests/conftest.py); each test uses its own clinic
ids, so what it reads back is its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from revisit.migrate import migrate_all
from shared.kafka import ensure_topics


@pytest.fixture(scope="session")
async def seg_dsn(pg: Any) -> str:
    await migrate_all(pg.dsn)
    return str(pg.dsn)


@pytest.fixture(scope="session")
async def seg_engine(seg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(seg_dsn, pool_size=5, max_overflow=5)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def seg_sessions(seg_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(seg_engine, expire_on_commit=False)


@pytest.fixture(scope="session")
async def seg_topics(kafka: Any) -> str:
    await ensure_topics(kafka.bootstrap, 3)
    return str(kafka.bootstrap)
