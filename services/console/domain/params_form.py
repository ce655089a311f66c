"""A block of segment parameters as a form, and the form read back with a precise error per
field. The segmenter validates the values again (ranges, every segment once...) and its
refusal names the field too."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamField:
    name: str
    kind: str  # bool | int | float | text | json
    value: str
    checked: bool = False

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return "json"


def form_fields(parameters: Mapping[str, Any]) -> list[ParamField]:
    fields = []
    for name, value in parameters.items():
        kind = _kind(value)
        shown = json.dumps(value) if kind == "json" else ("" if kind == "bool" else str(value))
        fields.append(ParamField(name, kind, shown, checked=value is True))
    return fields


def read_form(
    current: Mapping[str, Any], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the block's new values, errors by field). Only the block's own fields are read."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, now in current.items():
        kind = _kind(now)
        raw = form.get(f"p.{name}")
        if kind == "bool":
            values[name] = raw is not None
            continue
        text = (raw or "").strip()
        try:
            if kind == "int":
                values[name] = int(text)
            elif kind == "float":
                values[name] = float(text)
            elif kind == "text":
                values[name] = text
            else:
                values[name] = json.loads(text)
        except ValueError:
            wanted = {"int": "a whole number", "float": "a number"}.get(kind, "valid JSON")
            errors[name] = f"{name}: must be {wanted}"
    return values, errors
