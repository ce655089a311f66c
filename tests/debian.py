"""Debian packages a test needs (a real Prometheus, a real Chromium), installed when missing.

CI runs the suite as root on a fresh Debian machine: the package is installed with apt-get,
running ``apt-get update`` only if the first install fails. The test is skipped, saying why,
only when apt itself cannot be used (no apt-get, or not root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

APT_TIMEOUT_S = 900


def _found(binaries: Sequence[str]) -> str | None:
    for name in binaries:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_package(package: str, binaries: Sequence[str]) -> str:
    """The path of the first of ``binaries`` found, installing ``package`` if none is."""
    found = _found(binaries)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip(f"{package} is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip(f"{package} is not installed and installing it with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
    if result.returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, timeout=APT_TIMEOUT_S)
        result = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
    found = _found(binaries)
    if result.returncode != 0 or not found:
        tail = result.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"apt-get install {package} failed ({result.returncode}): {tail}")
    return found
