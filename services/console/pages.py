"""The Jinja2 environment the pages render with: autoescaped, with the practice's words and
time formats as filters. A field a service leaves out renders as nothing (services add and drop
optional fields; a page must not fail for it)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console.domain import words


def when(value: Any) -> str:
    """2026-03-03 15:04 UTC, from an ISO string or a datetime; a dash for nothing."""
    if value in (None, ""):
        return "—"
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.strftime("%Y-%m-%d %H:%M") + (" UTC" if at.utcoffset() is not None else "")


def page_environment(folder: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = words.duration
    env.globals.update(
        CASE_TYPES=words.CASE_TYPES,
        OUTCOMES=words.OUTCOMES,
        STATES=words.STATES,
        INTENTS=words.INTENTS,
        BARRIERS=words.BARRIERS,
        SEGMENTS=words.SEGMENTS,
        say=words.say,
    )
    return env
