"""A real Prometheus server (Debian package ``prometheus``) for the dashboard test.

``ensure_prometheus`` installs the package with apt when the binary is not on PATH
(``tests.debian``).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.debian import ensure_package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_prometheus() -> str:
    return ensure_package("prometheus", ("prometheus",))


@dataclass
class Prometheus:
    """Prometheus's HTTP API (async: the service it scrapes runs in the same event loop)."""

    url: str
    client: httpx.AsyncClient

    async def query(self, expr: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def label_values(self, label: str, selector: str) -> list[str]:
        r = await self.client.get(
            f"{self.url}/api/v1/label/{label}/values", params={"match[]": selector}
        )
        values: list[str] = r.json()["data"]
        return values

    async def targets_up(self) -> bool:
        r = (await self.client.get(f"{self.url}/api/v1/targets")).json()
        active = r["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


@asynccontextmanager
async def running_prometheus(
    binary: str, target: str, job: str = "revisit"
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``target`` (host:port) every second as job ``job``."""
    port = free_port()
    base = Path(tempfile.mkdtemp(prefix="revisit-prometheus-"))
    config = base / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n    scrape_interval: 1s\n"
        f"    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
    )
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(base / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    client = httpx.AsyncClient(timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log = (base / "prometheus.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"prometheus exited ({process.returncode}): {log}")
            try:
                if (await client.get(f"{url}/-/ready", timeout=1)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready within 30 s")
            await asyncio.sleep(0.1)
        yield Prometheus(url, client)
    finally:
        await client.aclose()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(base, ignore_errors=True)
