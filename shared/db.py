"""Engine and session factories.

Each service owns one Postgres schema and never reads another's. The backbone tables (outbox,
inbox, timers; see ``shared.migration_ops``) live in every service's schema so a handler's state
change, its inbox row and its outgoing events commit in one local transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.config import DatabaseSettings

PLATFORM_SCHEMA = "platform"


def make_engine(settings: DatabaseSettings, *, application_name: str = "revisit") -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        echo=settings.database_echo,
        # Bound parameters are patient data: keep them out of error text and tracebacks.
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def plain_dsn(database_url: str) -> str:
    """The asyncpg/libpq form of an SQLAlchemy URL (for LISTEN connections)."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
