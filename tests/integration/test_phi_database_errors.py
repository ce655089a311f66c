"""A statement that fails on patient data: its error names the failure, not the values."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.config import DatabaseSettings
from shared.db import make_engine
from shared.phi import scrub_exception

pytestmark = pytest.mark.integration


async def test_bound_values_stay_out_of_a_database_error_and_its_scrubbed_text(pg: Any) -> None:
    engine = make_engine(DatabaseSettings(database_url=pg.dsn, database_pool_size=1))
    planted = {"name": "Marisol Quintanilla", "phone": "+15125550143", "dob": "1979-03-14"}
    try:
        with pytest.raises(DBAPIError) as raised:
            async with engine.connect() as conn:
                await conn.execute(
                    text("SELECT CAST(:dob AS date), CAST(:phone AS text), CAST(:name AS integer)"),
                    planted,
                )
    finally:
        await engine.dispose()
    message = str(raised.value)
    # hide_parameters: no "[parameters: (...)]" part; the driver may still quote the value it
    # could not encode, which the scrubber (logs, spans) removes.
    assert "parameters hidden" in message and "[parameters:" not in message
    scrubbed = scrub_exception(message)
    assert "invalid input" in scrubbed  # what went wrong is still said
    for value in planted.values():
        assert value not in scrubbed
