"""A real headless Chromium (Debian package ``chromium``) for the pilot report's rendering test.

``ensure_chromium`` installs the package with apt when the binary is not there
(``tests.debian``). ``serve`` publishes a folder on 127.0.0.1 so the page loads its charts over
HTTP, as a browser opening a shared report would.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.debian import ensure_package

BROWSER_TIMEOUT_S = 120
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def ensure_chromium() -> str:
    return ensure_package("chromium", CANDIDATES)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on a free port of 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="revisit-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",  # the suite runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    if result.returncode != 0:
        raise AssertionError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def dump_dom(binary: str, url: str) -> str:
    """The page's DOM after load, as Chromium serialises it."""
    return _run(binary, "--dump-dom", url).stdout


def screenshot(binary: str, url: str, png: Path, *, width: int = 1200, height: int = 2000) -> Path:
    _run(binary, f"--screenshot={png}", f"--window-size={width},{height}", url)
    return png
