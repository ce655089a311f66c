"""The funnel per segment as staff read it, and where the dashboards are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from services.console.domain.words import SEGMENTS, say

DASHBOARDS = (
    ("revisit-recall-outcomes", "Recall outcomes"),
    ("revisit-pipeline-health", "Pipeline health"),
)


@dataclass(frozen=True)
class FunnelRow:
    segment: str
    label: str
    figures: dict[str, str]  # column -> the figure as shown


COLUMNS = (
    ("eligible", "Eligible"),
    ("messaged", "Messaged"),
    ("reached", "Reached"),
    ("response_rate", "Responded"),
    ("rebooked", "Rebooked"),
    ("completed", "Completed"),
    ("revenue_cents", "Revenue recovered"),
    ("cancellation_recovery_rate", "Cancellations recovered"),
    ("opt_out_rate", "Opt-out rate"),
    ("hours_to_booking_median", "Time to booking (median)"),
)


def _shown(column: str, value: Any) -> str:
    if value is None:
        return "—"  # a rate with nothing under it is not zero
    if column.endswith("_rate"):
        return f"{float(value):.0%}"
    if column == "revenue_cents":
        return f"${int(value) / 100:,.0f}"
    if column.startswith("hours_"):
        hours = float(value)
        return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} d"
    return f"{int(value):,}"


def funnel_rows(rows: Iterable[Mapping[str, Any]]) -> list[FunnelRow]:
    out = [
        FunnelRow(
            segment=str(r.get("segment") or ""),
            label=say(SEGMENTS, r.get("segment")),
            figures={c: _shown(c, r.get(c)) for c, _ in COLUMNS},
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: r.label)


def dashboard_links(grafana_url: str, clinic_id: str) -> list[tuple[str, str]]:
    """(title, URL) of each Grafana dashboard filtered to the clinic; none without Grafana."""
    base = grafana_url.rstrip("/")
    if not base:
        return []
    query = urlencode({"var-clinic": clinic_id})
    return [(title, f"{base}/d/{uid}?{query}") for uid, title in DASHBOARDS]
