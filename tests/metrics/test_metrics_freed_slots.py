"""Freed slots in metrics: slots freed, offered and refilled, patients offered, the revenue kept
and the time to refill, folded order-free from SlotFreed / SlotOffered / SlotRefilled."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from services.metrics.domain.freed_slots import fold
from shared.events import Envelope, new_event
from shared.events.common import Channel, ServiceLine
from shared.events.messages import OfferSource, SlotFreed, SlotOffered, SlotRefilled
from tests.metrics.conftest import RunningMetrics, clinic, eventually

FREED_AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def freed_slot_events(
    clinic_id: str, *, offered: int = 3, refilled_after: timedelta | None = None,
    price_cents: int | None = 18000,
) -> list[Envelope[Any]]:  # fmt: skip
    """One freed slot's events: freed, offered to ``offered`` patients, perhaps refilled."""
    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    facts: dict[str, Any] = {
        "offer_id": offer_id,
        "slot_id": f"slot-{offer_id}",
        "start": FREED_AT + timedelta(days=2),
        "service_line": ServiceLine.skin_check,
        "provider_id": "dr-1",
        "location_id": None,
        "freed_at": FREED_AT,
        "price_cents": price_cents,
        "currency": "USD" if price_cents is not None else None,
    }

    def event(payload: Any, patient: str, at: datetime) -> Envelope[Any]:
        return new_event(
            payload, clinic_id=clinic_id, patient_key=f"{clinic_id}:{patient}", occurred_at=at
        )

    events = [event(SlotFreed(**facts, appointment_id="appt-1"), "canceller", FREED_AT)]
    for n in range(offered):
        offer = SlotOffered(**facts, batch=1, source=OfferSource.waitlist, channel=Channel.sms)
        events.append(event(offer, f"p{n}", FREED_AT + timedelta(minutes=1)))
    if refilled_after is not None:
        at = FREED_AT + refilled_after
        refill = SlotRefilled(**facts, booking_request_id="req-1", refilled_at=at)
        events.append(event(refill, "p0", at))
    return events


def test_a_freed_slot_row_is_the_same_in_any_order() -> None:
    events = freed_slot_events("c1", offered=3, refilled_after=timedelta(minutes=20))
    expected = fold(events)
    for seed in range(20):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        assert fold(shuffled) == expected
    [row] = expected.values()
    assert row.offers == 3 and row.freed_at == FREED_AT
    assert row.refilled_at == FREED_AT + timedelta(minutes=20) and row.price_cents == 18000


def _samples(body: str, clinic_id: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.labels.get("clinic_id") == clinic_id and "freed_slot" in s.name:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "clinic_id"))
                out[(s.name, labels)] = s.value
    return out


async def test_metrics_counts_slots_offered_refilled_revenue_kept_and_time_to_refill(
    metrics: RunningMetrics,
) -> None:
    c = clinic()
    events = [
        *freed_slot_events(c, offered=3, refilled_after=timedelta(minutes=20)),
        *freed_slot_events(c, offered=2, refilled_after=timedelta(minutes=40)),
        *freed_slot_events(c, offered=4, refilled_after=None),  # offered, nobody took it
        *freed_slot_events(c, offered=0, refilled_after=None, price_cents=None),
    ]
    await metrics.publish(events)
    line = (("service_line", "skin_check"),)

    async def seen() -> dict[Any, float] | None:
        found = _samples((await metrics.client.get("/metrics")).text, c)
        done = found.get(("revisit_freed_slots", (("outcome", "refilled"), *line)))
        offers = found.get(("revisit_freed_slot_offers", line))
        return found if done == 2 and offers == 9 else None

    found = await eventually(seen)
    assert found, "the freed-slot figures never reached /metrics"
    assert found[("revisit_freed_slots", (("outcome", "freed"), *line))] == 4
    assert found[("revisit_freed_slots", (("outcome", "offered"), *line))] == 3
    assert found[("revisit_freed_slot_revenue_kept_cents", line)] == 36000
    p50 = found[("revisit_freed_slot_time_to_refill_seconds", (("quantile", "0.5"),))]
    p90 = found[("revisit_freed_slot_time_to_refill_seconds", (("quantile", "0.9"),))]
    assert p50 == 30 * 60 and 38 * 60 <= p90 <= 40 * 60

    other = clinic()
    await metrics.publish(freed_slot_events(other, refilled_after=timedelta(minutes=5)))
    report = await metrics.client.get(
        "/reports/freed-slots", params={"clinic_id": c}, headers=metrics.token(c)
    )
    assert report.status_code == 200, report.text
    [row] = report.json()["rows"]
    assert row == {
        "clinic_id": c,
        "service_line": "skin_check",
        "freed": 4,
        "offered": 3,
        "patients_offered": 9,
        "refilled": 2,
        "refill_rate": 0.5,
        "revenue_kept_cents": 36000,
        "time_to_refill_p50_minutes": 30.0,
        "time_to_refill_p90_minutes": 38.0,
    }
    refused = await metrics.client.get(
        "/reports/freed-slots", params={"clinic_id": other}, headers=metrics.token(c)
    )
    assert refused.status_code == 403
    csv = await metrics.client.get(
        "/reports/freed-slots", params={"clinic_id": c, "format": "csv"}, headers=metrics.token(c)
    )
    header, line = csv.text.strip().splitlines()
    assert header.startswith("clinic_id,service_line,freed,") and line.startswith(f"{c},")
    later = await metrics.client.get(  # slots freed on 2 March are not in a range from 3 March
        "/reports/freed-slots",
        params={"clinic_id": c, "from": "2026-03-03"},
        headers=metrics.token(c),
    )
    assert later.json()["rows"] == []
