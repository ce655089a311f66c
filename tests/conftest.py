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
from typing import Any

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


# The modules whose tests run on the session's `revisit dev` stack (the ``dev_stack`` fixture).
DEV_STACK_MODULES = {
    "tests/e2e/test_walking_skeleton.py",
    "tests/e2e/test_backfill.py",
    "tests/e2e/test_cancellation_recovery.py",
}


def group_of(nodeid: str) -> str:
    """The worker group of a test when the suite runs in parallel (``make test``: pytest-xdist
    with ``--dist loadgroup``): one module per group, so a module's fixtures (a stack of its
    own, a simulated practice) are set up once, and the modules on the session's ``revisit dev``
    stack in one group, so that stack starts once."""
    module = nodeid.split("::", 1)[0]
    return "dev-stack" if module in DEV_STACK_MODULES else module


# The groups that take minutes (each starts a stack of its own and runs simulated weeks), longest
# first. xdist hands each worker two groups at the start, in queue order (``make test`` runs
# with --no-loadscope-reorder): the three longest go to three workers, each with a short group
# behind it, and the next two go to the first workers to free up, so no long group starts last.
LONG_GROUPS = (
    ("tests/e2e/test_simulated_practice.py", "tests/e2e/test_pilot_command.py", "dev-stack"),
    ("tests/e2e/test_chaos_short.py", "tests/e2e/test_console.py"),
)


def scheduled(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with the long groups placed as LONG_GROUPS says; the rest in their order."""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(group_of(item.nodeid), []).append(item)
    first, later = ([g for g in names if g in groups] for names in LONG_GROUPS)
    short = [g for g in groups if g not in first and g not in later]
    order = first + short[: len(first)] + later + short[len(first) :]
    return [item for group in order for item in groups[group]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
        if "dev_stack" in getattr(item, "fixturenames", ()):
            module = item.nodeid.split("::", 1)[0]
            assert module in DEV_STACK_MODULES, f"add {module} to DEV_STACK_MODULES"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = scheduled(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by ``group_of``. (xdist's own loadgroup reads ``xdist_group`` marks
    by rewriting node ids, which pytest 9 no longer lets it do.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return ByGroup(config, log)


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
