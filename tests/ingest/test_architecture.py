"""Ingest's mapping core stays pure: no database, web, broker or network imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INGEST = Path(__file__).resolve().parents[2] / "services" / "ingest"
PURE = [
    INGEST / "domain.py",
    INGEST / "submissions.py",
    *sorted((INGEST / "mapping").glob("*.py")),
    *sorted((INGEST / "fhir").glob("*.py")),
    *sorted((INGEST / "hl7v2").glob("*.py")),
]
FORBIDDEN = {"sqlalchemy", "fastapi", "httpx", "faststream", "asyncpg", "aiokafka", "starlette"}
FORBIDDEN |= {"services.ingest.handlers", "services.ingest.repository", "asyncio", "socket"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(INGEST)) for p in PURE])
def test_mapping_modules_import_nothing_that_does_io(path: Path) -> None:
    bad = {
        name for name in imports(path) for f in FORBIDDEN if name == f or name.startswith(f + ".")
    }
    assert not bad


@pytest.mark.parametrize("path", sorted(INGEST.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 300
