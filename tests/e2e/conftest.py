"""The real thing: `revisit dev` started as a process, as `make run` starts it.

One stack per session (service start-up is dominated by consumer-group joins), on free ports so
it never collides with anything else on the machine. The messenger books through the synthetic
practice's FHIR scheduling API (simulator/scheduling.py), served from this test process, so a
test sees every appointment booked by text, as the EHR would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from revisit.embedded.ports import free_port
from shared.config import SERVICE_NAMES
from simulator.calendar import BookedAppointment, Calendar
from simulator.catalogue import default_clinic
from simulator.scheduling import SchedulingServer

READY_TIMEOUT_S = 120


@dataclass
class EhrScheduling:
    """The practice's scheduling API the stack's messenger books through, and what it booked."""

    base_url: str
    calendar: Calendar
    booked: list[BookedAppointment] = field(default_factory=list)


@pytest.fixture(scope="session")
def ehr_scheduling() -> Iterator[EhrScheduling]:
    """simulator/scheduling.py served on its own event loop in a thread of this process."""
    calendar = Calendar(default_clinic())
    booked: list[BookedAppointment] = []
    loop = asyncio.new_event_loop()
    server = SchedulingServer(calendar, booked.append, port=free_port())
    ready = threading.Event()
    urls: list[str] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        urls.append(loop.run_until_complete(server.start()))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="ehr-scheduling", daemon=True)
    thread.start()
    assert ready.wait(30), "the scheduling API did not start"
    try:
        yield EhrScheduling(urls[0], calendar, booked)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    urls: dict[str, str]
    api_key: str
    admin_token: str
    jwt_secret: str
    database_url: str
    log_path: Path
    data_dir: Path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _all_ready(urls: dict[str, str]) -> bool:
    for url in urls.values():
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


@pytest.fixture(scope="session")
def dev_stack(
    tmp_path_factory: pytest.TempPathFactory, ehr_scheduling: EhrScheduling
) -> Iterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("revisit-dev")
    with running_dev_stack(data_dir, scheduling_url=ehr_scheduling.base_url) as stack:
        yield stack


@contextlib.contextmanager
def running_dev_stack(data_dir: Path, *, scheduling_url: str | None = None) -> Iterator[DevStack]:
    """`revisit dev --no-simulator` on free ports in ``data_dir``, until the block ends; its
    messenger books through ``scheduling_url`` (a FHIR scheduling API) when one is given."""
    env, ports, pg_port = dev_environment()
    if scheduling_url is not None:
        env.update(
            REVISIT_MESSENGER_SCHEDULING="fhir", REVISIT_MESSENGER_FHIR_BASE_URL=scheduling_url
        )
    log_path = data_dir / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "revisit", "dev", "--data-dir", str(data_dir), "--no-simulator"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _all_ready(urls):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-4000:]
            process.kill()
            pytest.fail(f"revisit dev did not become ready:\n{tail}")
        time.sleep(0.5)
    creds = json.loads((data_dir / "dev-credentials.json").read_text())
    stack = DevStack(
        process=process,
        urls=urls,
        api_key=creds["api_key"],
        admin_token=creds["admin_token"],
        jwt_secret=creds["jwt_secret"],
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/revisit",
        log_path=log_path,
        data_dir=data_dir,
    )
    try:
        yield stack
    finally:
        stop_dev(process)


def dev_environment() -> tuple[dict[str, str], dict[str, int], int]:
    """(environment, service ports, Postgres port) for a `revisit dev` on free ports, with
    nothing of the caller's own stack (database, broker, secret) leaking in."""
    ports = {name: free_port() for name in (*SERVICE_NAMES, "console")}
    pg_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REVISIT_JWT_SECRET"}
    }
    env.update({f"REVISIT_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update(
        REVISIT_MLLP_PORT=str(free_port()),
        REVISIT_PG_PORT=str(pg_port),
        REVISIT_KAFKA_PORT=str(free_port()),
        REVISIT_SIMULATOR_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env, ports, pg_port


def stop_dev(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Ctrl-C, as a person would; whatever is left after ``timeout`` is killed."""
    if process.poll() is None:
        family = [process.pid] + [c.pid for c in _children(process.pid)]
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in family:
                _kill(pid)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
