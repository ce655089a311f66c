"""SECURITY.md names a test for every claim: each named test must exist, so the threat model
and the OWASP table cannot point at tests that were renamed or removed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ROOT / "SECURITY.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
OWASP_2023 = [f"API{n} " for n in range(1, 11)]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def table_rows(text: str, heading: str) -> list[str]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]


def test_every_test_security_md_names_exists() -> None:
    text = SECURITY.read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 20
    missing = []
    for file, name in references:
        path = ROOT / file
        if not path.is_file() or name not in defined_tests(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"


def test_every_row_names_a_test() -> None:
    text = SECURITY.read_text()
    rows = table_rows(text, "## Main threats") + table_rows(text, "## OWASP API Security Top 10")
    for row in rows:
        assert REFERENCE.search(row), row


def test_the_owasp_table_has_the_ten_risks_of_2023_in_order() -> None:
    rows = table_rows(SECURITY.read_text(), "## OWASP API Security Top 10 (2023)")
    assert [
        row.split("|")[1].strip()[: len(p)] for row, p in zip(rows, OWASP_2023, strict=True)
    ] == (OWASP_2023)
