"""Session-wide infrastructure: one Postgres and one broker, started only if a test asks.

TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP point the suite at servers someone else runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from revisit.embedded.broker import EmbeddedBroker, ExternalBroker
from revisit.embedded.postgres import EmbeddedPostgres, ExternalPostgres

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres | ExternalPostgres]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield ExternalPostgres.from_url(url)
        return
    # Not tmp_path_factory: pytest keeps /tmp/pytest-of-<user> at 0700 and re-tightens it each
    # session, while postgres (run as its own account when we are root) must traverse into it.
    base = Path(tempfile.mkdtemp(prefix="revisit-test-pg-"))
    server = EmbeddedPostgres(base / "data", fast=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedBroker | ExternalBroker]:
    if bootstrap := os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        yield ExternalBroker(bootstrap)
        return
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    path = Path(os.environ.get("REVISIT_REALDATA_DIR") or REPO.parent / "shared" / "realdata")
    if not path.is_dir():
        pytest.skip(
            "../shared/realdata not found (set REVISIT_REALDATA_DIR): "
            "third-party samples live outside the repo"
        )
    return path
