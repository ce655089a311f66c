"""A `revisit dev` with the synthetic practice, run for a number of simulated days, for tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import _all_ready, dev_environment, stop_dev

RUN_TIMEOUT_S = 600


@dataclass
class Practice:
    urls: dict[str, str]
    token: str
    dsn: str
    log_path: Path

    def get(self, service: str, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.urls[service]}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def rows(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()


@contextlib.contextmanager
def simulated_practice(
    data_dir: Path, patients: int, days: int, seed: int, start: str | None = None
) -> Iterator[Practice]:
    """`revisit dev` with the practice, until it has lived ``days`` simulated days."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env, ports, pg_port = dev_environment()
    log_path = data_dir / "dev.log"
    argv = [sys.executable, "-m", "revisit", "dev", "--data-dir", str(data_dir), "--view", "log"]
    argv += ["--patients", str(patients), "--days", str(days), "--seed", str(seed)]
    argv += ["--speed", "1000", *(["--start", start] if start else [])]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while not _all_ready(urls) or "holding the clock" not in log_path.read_text(
            "utf-8", "replace"
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"the simulated practice did not finish {days} days:\n{tail}")
            time.sleep(1.0)
        creds = json.loads((data_dir / "dev-credentials.json").read_text())
        dsn = f"postgresql://postgres@127.0.0.1:{pg_port}/revisit"
        yield Practice(urls, creds["admin_token"], dsn, log_path)
    finally:
        stop_dev(process)
