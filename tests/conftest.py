"""Session-wide infrastructure: one Postgres and one broker, started only if a test asks.

TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP point the suite at servers someone else runs.

Every test gets exactly one tier marker, from what it uses, so ``-m`` selections can be trusted:
``e2e`` for everything under tests/e2e (real service processes), ``integration`` for a test that
needs the embedded Postgres or broker (the ``pg`` or ``kafka`` fixture, directly or through other
fixtures) or whose module says it starts real servers of its own (``pytestmark =
pytest.mark.integration``), ``unit`` for the rest.
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
E2E = REPO / "tests" / "e2e"
SERVERS = {"pg", "kafka"}


def tier_of(item: pytest.Item) -> str:
    if E2E in Path(str(item.fspath)).parents:
        return "e2e"
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & SERVERS or item.get_closest_marker("integration"):
        return "integration"
    return "unit"


def group_of(item: pytest.Item) -> str:
    """The worker group of a test when the suite runs in parallel (``make test``: pytest-xdist
    with ``--dist loadgroup``): one module per group, so a module's fixtures (a stack of its
    own, a simulated practice) are set up once, and every test on the session's ``revisit dev``
    stack in one group, so that stack starts once."""
    if "dev_stack" in getattr(item, "fixturenames", ()):
        return "dev-stack"
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group_of(item)))


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
