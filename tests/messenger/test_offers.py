"""Slot offers say whose times they are: the patient's own provider first, else another, named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.messenger.booking import find_offer
from services.messenger.domain.booking import Offer, offer_answer
from services.messenger.domain.conversation import OfferedSlot
from services.messenger.domain.linter import lint
from services.messenger.domain.system_messages import Reply, as_template, text_of
from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine

MONDAY = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/Chicago")
NAMES = {"dr-lee": "Dr. Lee", "dr-kim": "Dr. Kim", "dr-ng": "Dr. Ng"}


class Diary(SchedulingAdapter):
    """A fake EHR diary (the port's test double): free times per provider, and the searches."""

    name = "diary"

    def __init__(self, free: dict[str, list[int]]) -> None:
        self.free = free  # provider -> hours after MONDAY
        self.searched: list[str | None] = []

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        self.searched.append(query.provider_id)
        wanted = [query.provider_id] if query.provider_id else sorted(self.free)
        slots = [
            Slot(f"{p}-{h}", MONDAY + timedelta(hours=h), provider_id=query.provider_id)
            for p in wanted
            for h in self.free.get(p or "", [])
        ]
        return sorted(slots, key=lambda s: s.start)[: query.limit]

    async def book(
        self, slot: Slot, *, clinic_id: str, patient_id: str, booking_request_id: str
    ) -> BookingResult:
        return BookingResult(Booked.booked, "appt-1")


def query(provider: str | None = "dr-lee") -> SlotQuery:
    return SlotQuery("c1", ServiceLine.acne, provider, None, MONDAY)


async def test_the_patients_own_provider_is_offered_first() -> None:
    diary = Diary({"dr-lee": [26, 28, 50, 52], "dr-kim": [1, 2, 3]})
    offer = await find_offer(diary, query(), sorted(NAMES))
    assert (offer.provider_id, offer.same) == ("dr-lee", True)
    assert [s.slot_id for s in offer.slots] == ["dr-lee-26", "dr-lee-28", "dr-lee-50"]
    assert diary.searched == ["dr-lee"]  # nobody else is asked when they have times


async def test_when_the_provider_has_none_the_soonest_other_named_provider_is_offered() -> None:
    diary = Diary({"dr-lee": [], "dr-kim": [30, 31], "dr-ng": [5, 70]})
    offer = await find_offer(diary, query(), sorted(NAMES))
    assert (offer.provider_id, offer.same) == ("dr-ng", False)
    assert {s.provider_id for s in offer.slots} == {"dr-ng"}
    nobody = await find_offer(Diary({"dr-lee": []}), query(), sorted(NAMES))
    assert nobody.slots == () and not nobody.same


def test_the_offer_says_whose_times_they_are() -> None:
    slots = (OfferedSlot("s1", MONDAY + timedelta(hours=26)),)
    values = {"practice_name": "Lakeside", "practice_phone": "+1555", "service_name": "acne care"}

    def said(offer: Offer, own: str | None, language: str = "en") -> str:
        answer = offer_answer(offer, own, NAMES, ZONE, language)
        name = NAMES.get(own or "")
        return text_of(answer.reply, language, {**values, "provider_name": name, **answer.values})

    same = said(Offer(slots, "dr-lee", same=True), "dr-lee")
    assert same.startswith("Dr. Lee has these times for your acne care: 1) Tue Mar 10, 11:00 AM")
    assert "Reply 1, 2 or 3" in same
    other = said(Offer(slots, "dr-kim", same=False), "dr-lee")
    assert other.startswith("Dr. Lee has no open times soon. Dr. Kim has these for your")
    spanish = said(Offer(slots, "dr-kim", same=False), "dr-lee", "es")
    assert spanish.startswith("Dr. Lee no tiene horarios pronto. Dr. Kim tiene estos para su")
    unnamed = said(Offer(slots, None, same=False), "dr-lee")
    assert "another of our providers has these" in unnamed
    unknown = said(Offer(slots, "dr-x", same=True), "dr-unknown")
    assert unknown.startswith("Lakeside has these times")  # no name: the practice's times


def test_every_offer_passes_the_linter() -> None:
    for reply in (
        Reply.slot_offer_same_provider,
        Reply.slot_offer_other_provider,
        Reply.slot_offer_any_provider,
    ):
        for language in ("en", "es"):
            assert lint(as_template(reply, language), system=True) == []
