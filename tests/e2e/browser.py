"""A real headless Chromium driven by Playwright for the console's end-to-end tests, and axe-core
injected into each page.

- Chromium is Debian's package (``tests.simulator.chromium.ensure_chromium`` installs it with apt
  when missing); Playwright only drives it (``executable_path``): no browser is downloaded.
- axe-core comes from npm, installed when missing into ``.cache/e2e-node`` (ignored by git and
  by the image); npm itself is installed with apt when missing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.debian import ensure_package
from tests.simulator.chromium import ensure_chromium

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".cache" / "e2e-node"
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_VERSION = "4"
FLAGS = [
    "--headless",
    "--no-sandbox",  # the suite runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_axe() -> Path:
    if AXE.is_file():
        return AXE
    npm = shutil.which("npm") or ensure_package("npm", ["npm"])
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(NODE_DIR),
            "--no-save",
            "--no-audit",
            "--no-fund",
            f"axe-core@{AXE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0 or not AXE.is_file():
        raise RuntimeError(
            f"npm install axe-core failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return AXE


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Browser on Debian's chromium; each launch gets a fresh temporary profile
    (Playwright passes its own new ``--user-data-dir``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the lock installs it with the dev extras
        pytest.skip("playwright is not installed (make install installs the dev extras)")
    binary = ensure_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Any, axe: Path) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations on the page as it is now (the page's context
    must be opened with ``bypass_csp=True``: the console allows no injected script)."""
    page.add_script_tag(path=str(axe))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})); }"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
