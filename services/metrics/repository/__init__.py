"""The metrics schema: event counts, patient histories and the derived read model.

- ``counts``: counters kept per event (event types, message outcomes);
- ``histories``: one fact document per patient and the rows derived from it;
- ``reports``: the reports API's aggregations; ``figures``: the /metrics aggregations.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

SCHEMA = "metrics"


def numbers(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Postgres sums come back as Decimal: whole ones become int, others float."""
    out = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        out[key] = value
    return out
