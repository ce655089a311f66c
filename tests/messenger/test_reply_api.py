"""A person reads a reply from its case: the words, the one-line summary and the reading,
through the messenger's API (the case event carries only the reply's id)."""

from __future__ import annotations

from shared.events.escalations import EscalationRaised
from shared.topics import ESCALATIONS
from tests.messenger.conftest import Messenger, envelope, send_step, types_of


async def test_a_case_leads_to_the_reply_its_summary_and_reading(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":", 1)[0]
    await messenger.handle("commands", envelope(send_step(), patient_key))
    await messenger.outbound(patient_key, 1)
    words = "yes book me. also the biopsy site is oozing, is that normal?"
    reply = await messenger.reply(patient_key, words)
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    [case] = [e.payload for e in cases if isinstance(e.payload, EscalationRaised)]
    assert "oozing" not in case.summary and case.source_message_id == reply["message_id"]

    got = await messenger.client.get(
        f"/replies/{case.source_message_id}", headers=messenger.token("viewer", [clinic])
    )
    assert got.status_code == 200
    body = got.json()
    assert body["body"] == words and body["safety"] == "red_flag" and body["needs_person"]
    assert body["summary"].startswith("red flag: infection")
    assert 'question: "also the biopsy site is oozing, is that normal?"' in body["summary"]
    assert body["reading"]["suggested_intent"] == "book"

    other = await messenger.client.get(
        f"/replies/{case.source_message_id}", headers=messenger.token("viewer", ["elsewhere"])
    )
    missing = await messenger.client.get("/replies/nope", headers=messenger.token())
    # another clinic's reply and no reply at all read the same: nothing says the id exists
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()

    view = await messenger.client.get(
        f"/patients/{patient_key}/conversation", headers=messenger.token("viewer", [clinic])
    )
    assert view.json()["summary"] == body["summary"]
