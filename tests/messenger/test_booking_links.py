"""Tracked booking links: one per step, nothing about the patient in the URL, a redirect to the
practice's booking page, and the click recorded once for metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.messenger import links
from services.messenger.practices import Practice
from services.messenger.queue import step_message_id
from services.messenger.sending import template_values
from services.messenger.settings import MessengerSettings
from shared.events.messages import BookingLinkClicked
from shared.topics import MESSAGES
from tests.messenger.conftest import LINK_BASE, Messenger, envelope, new_clinic, send_step

BOOKING_PAGE = "https://book.example.org/derm"
LINK = re.compile(re.escape(LINK_BASE) + r"/([A-Za-z0-9]{8})\b")


async def _practice(messenger: Messenger, clinic: str) -> None:
    body = {"name": "Lakeside Dermatology", "phone": "+15555550100", "booking_url": BOOKING_PAGE}
    r = await messenger.client.put(
        f"/practices/{clinic}", json=body, headers=messenger.token("admin", [clinic])
    )
    assert r.status_code == 200, r.text


async def _clicks(messenger: Messenger, token: str) -> dict[str, Any]:
    [row] = await messenger.rows(
        "SELECT clicks, first_clicked_at FROM messenger.booking_links WHERE token = :t", t=token
    )
    return row


async def test_each_step_gets_its_own_link_with_nothing_about_the_patient_in_it(
    messenger: Messenger,
) -> None:
    clinic = new_clinic()
    await _practice(messenger, clinic)
    patient_key, number = await messenger.new_patient(clinic, given_name="Ana")
    step2 = send_step(step=2, workflow="cancellation_recovery")
    await messenger.handle("commands", envelope(step2, patient_key))
    [sms] = await messenger.outbound(patient_key, 1)
    [token] = LINK.findall(sms["body"])
    url = f"{LINK_BASE}/{token}"
    assert BOOKING_PAGE not in sms["body"] and len(url) <= links.LINK_MAX
    for private in (
        patient_key, patient_key.split(":")[1], clinic, step2.sequence_id, number, number[2:],
        "Ana", "skin", "dr-1", "loc-1",
    ):  # fmt: skip
        assert private.lower() not in url.lower(), private
    # The same step asks again (a redelivered command): the same link. Another step: another.
    async with messenger.runtime.sessions() as session, session.begin():
        again = await links.links_for(
            session,
            LINK_BASE,
            [
                links.StepLink(clinic, patient_key, step2.sequence_id, 2, BOOKING_PAGE),
                links.StepLink(clinic, patient_key, step2.sequence_id, 3, BOOKING_PAGE),
            ],
        )
    assert again[(step2.sequence_id, 2)] == url
    assert again[(step2.sequence_id, 3)] not in (url, None)


async def test_opening_the_link_redirects_to_the_booking_page_and_records_the_click_once(
    messenger: Messenger,
) -> None:
    clinic = new_clinic()
    await _practice(messenger, clinic)
    patient_key, _ = await messenger.new_patient(clinic)
    step2 = send_step(step=2, workflow="cancellation_recovery")
    await messenger.handle("commands", envelope(step2, patient_key))
    [sms] = await messenger.outbound(patient_key, 1)
    [token] = LINK.findall(sms["body"])

    peek = await messenger.client.head(f"/b/{token}")  # a link checker: no click
    assert peek.status_code == 302 and peek.headers["location"] == BOOKING_PAGE
    assert (await _clicks(messenger, token))["clicks"] == 0
    for _ in range(2):  # no credential needed: the patient's phone opens it
        opened = await messenger.client.get(f"/b/{token}")
        assert opened.status_code == 302
        assert opened.headers["location"] == BOOKING_PAGE
        assert opened.headers["cache-control"] == "no-store"
    recorded = await _clicks(messenger, token)
    assert recorded["clicks"] == 2 and recorded["first_clicked_at"] is not None

    events = await messenger.events(
        MESSAGES.name, patient_key, lambda es: any(e.type == "BookingLinkClicked" for e in es)
    )
    clicked = [e.payload for e in events if isinstance(e.payload, BookingLinkClicked)]
    assert len(clicked) == 1  # the first click only: metrics counts patients who opened it
    assert (clicked[0].sequence_id, clicked[0].step) == (step2.sequence_id, 2)
    assert clicked[0].message_id == step_message_id(f"{step2.sequence_id}:2")

    unknown = await messenger.client.get("/b/AAAAAAAA")
    assert unknown.status_code == 404 and "AAAAAAAA" not in unknown.text
    assert (await messenger.client.get("/b/short")).status_code == 422


WHEN: dict[str, Any] = {
    "now": datetime(2026, 3, 3, 15, tzinfo=UTC),
    "default_zone": "America/Chicago",
}


def test_without_a_tracked_link_the_message_names_the_booking_page_itself() -> None:
    practice = Practice("Lakeside", "555", BOOKING_PAGE)
    plain = template_values(send_step(step=2), None, practice, None, "en", **WHEN)
    assert plain["booking_link"] == BOOKING_PAGE
    tracked = template_values(
        send_step(step=2), None, practice, None, "en", "https://l.x/b/x", **WHEN
    )
    assert tracked["booking_link"] == "https://l.x/b/x"


@pytest.mark.parametrize(
    ("base", "why"),
    [
        ("https://links.lakeside-dermatology.example/b", "must fit 40 characters"),
        ("https://go.example/b/", "without a query or trailing /"),
        ("go.example/b", "http(s) URL"),
    ],
)
def test_a_link_base_that_cannot_make_short_clean_links_is_refused(base: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        MessengerSettings(link_base_url=base)
