"""The docs follow the code: README's project layout names what is there, and every doc the code
cites exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_architecture import FLOOR_PLAN, SERVICES

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = "services/<name>/"


def layout() -> list[tuple[str | None, list[str]]]:
    """README's layout block as (parent, names) per line: the path-like names a line starts
    with, and the unindented path an indented line belongs to."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Project layout") :]
    block = section.split("```")[1]
    lines: list[tuple[str | None, list[str]]] = []
    parent = None
    for line in block.strip("\n").splitlines():
        names = []
        for word in line.split():
            if not (word.endswith("/") or word.endswith(".py")):
                break
            names.append(word)
        indented = line.startswith(" ")
        if not indented:
            parent = names[0] if len(names) == 1 else None
        lines.append((parent if indented else None, names))
    return lines


def test_every_path_the_layout_names_exists() -> None:
    missing = []
    for parent, names in layout():
        if parent == TEMPLATE:
            continue  # the floor plan itself: checked against the architecture test below
        for name in names:
            path = f"{parent}{name}" if parent else name
            places = [path.replace("<name>", s) for s in SERVICES] if "<name>" in path else [path]
            missing += [p for p in places if not (REPO / p).exists()]
    assert not missing


def test_the_layout_names_every_service_and_the_floor_plan_the_architecture_test_checks() -> None:
    top = {name for parent, names in layout() if parent is None for name in names}
    assert {f"services/{s}/" for s in SERVICES} <= top
    plan = {n.rstrip("/") for parent, names in layout() if parent == TEMPLATE for n in names}
    assert plan == FLOOR_PLAN - {"__init__.py", "handlers"}


def test_every_doc_the_code_cites_exists() -> None:
    code = {
        path: path.read_text()
        for root in ("shared", "services", "revisit", "simulator", "bench")
        for path in (REPO / root).rglob("*.py")
    }
    cited = {doc for text in code.values() for doc in re.findall(r"\bdocs/[\w./-]+\.md\b", text)}
    assert "docs/kafka-notes.md" in cited
    assert not [doc for doc in sorted(cited) if not (REPO / doc).is_file()]
    # The broker notes once lived outside the repository under another name.
    assert not [path for path, text in code.items() if "KAFKA-NOTES" in text]
