"""Run every schema's Alembic migrations: the platform schema first, then each service's.

Each service keeps its own history in ``services/<name>/migrations`` with its version table in
its own schema, so services can be migrated (and later split into databases) independently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from shared.config import SERVICE_NAMES

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


def migration_locations() -> dict[str, Path]:
    """Schema name -> folder of its Alembic history, in the order they must run."""
    locations = {
        "platform": ROOT / "shared" / "migrations",
        "audit": ROOT / "shared" / "audit_migrations",
    }
    for name in SERVICE_NAMES:
        locations[name] = ROOT / "services" / name / "migrations"
    return locations


def _upgrade(connection: Any, location: Path, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate_all(database_url: str, revision: str = "head") -> None:
    engine = create_async_engine(database_url, hide_parameters=True)
    try:
        for schema, location in migration_locations().items():
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade, location, revision)
            log.info("migrated", extra={"schema": schema})
    finally:
        await engine.dispose()
