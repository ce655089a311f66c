"""Freed slots as metrics reads them: each freed slot's one row, folded from its events.

Every freed-slot event carries the whole slot (when it was freed, its service and price), so a
row is complete from whichever event arrives first; merging is order-free and idempotent apart
from ``offers``, which the inbox keeps from counting an event twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.events import Envelope

TYPES = frozenset({"SlotFreed", "SlotOffered", "SlotRefilled"})


@dataclass(frozen=True)
class FreedSlotRow:
    offer_id: str
    clinic_id: str
    service_line: str
    start: datetime
    freed_at: datetime
    offers: int = 0
    first_offered_at: datetime | None = None
    refilled_at: datetime | None = None
    price_cents: int | None = None
    currency: str | None = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def fold(events: Iterable[Envelope[Any]]) -> dict[str, FreedSlotRow]:
    """The rows a batch of events adds to (offer id -> what these events say)."""
    rows: dict[str, FreedSlotRow] = {}
    for e in events:
        if e.type not in TYPES:
            continue
        p = e.payload
        row = rows.get(p.offer_id) or FreedSlotRow(
            p.offer_id, e.clinic_id, p.service_line.value, p.start, p.freed_at
        )
        row = replace(
            row,
            freed_at=min(row.freed_at, p.freed_at),
            price_cents=row.price_cents if row.price_cents is not None else p.price_cents,
            currency=row.currency or p.currency,
        )
        if e.type == "SlotOffered":
            row = replace(
                row,
                offers=row.offers + 1,
                first_offered_at=_earliest(row.first_offered_at, e.occurred_at),
            )
        elif e.type == "SlotRefilled":
            row = replace(row, refilled_at=_earliest(row.refilled_at, p.refilled_at))
        rows[p.offer_id] = row
    return rows
