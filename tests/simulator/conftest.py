"""Fixtures for the simulator's tests. Each section belongs to the tests named in its heading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

# --- EHR feed (test_ehr_feed.py): the real ingest app, reached over real sockets ----------------
# The ingest fixtures (one migrated Postgres, the topics, the app with its MLLP listener) are
# reused as they are; here the same app is also served over HTTP, as the simulator reaches it.
from tests.ingest.conftest import Ingest, ingest, ingest_infra  # noqa: F401


@pytest.fixture(scope="session")
async def ingest_url(ingest: Ingest) -> AsyncIterator[str]:  # noqa: F811
    """Base URL of the running ingest app (its lifespan is already held by ``ingest``)."""
    server = uvicorn.Server(
        uvicorn.Config(ingest.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it could not start
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


# --- end of EHR feed fixtures ---------------------------------------------------------------
