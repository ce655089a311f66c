"""The body of every service's Alembic ``env.py``: one schema, one version table inside it.

Migrations run on a connection handed over by ``revisit.migrate`` (Alembic's connection-sharing
recipe for asyncio), so one command migrates every schema in order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


def run_migrations(context: Any, schema: str) -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `revisit migrate` (it provides the connection)")
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=False,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
