"""Integration API keys: created for one clinic, stored hashed, looked up by key id."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.ingest import repository
from shared.auth import ApiKeyLookup, new_api_key


async def create_api_key(database_url: str, clinic_id: str, label: str) -> str:
    """Create a key for ``clinic_id``; returns the plaintext, which is never stored."""
    plaintext, key_id, secret_hash = new_api_key()
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await repository.insert_api_key(session, key_id, clinic_id, secret_hash, label)
    finally:
        await engine.dispose()
    return plaintext


def api_key_lookup(sessions: async_sessionmaker[AsyncSession]) -> ApiKeyLookup:
    async def lookup(key_id: str) -> tuple[str, str, bool] | None:
        async with sessions() as session:
            return await repository.find_api_key(session, key_id)

    return lookup
