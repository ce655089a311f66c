"""The staff inbox on the real service and database: which replies wait for a person, staff
replies through the same send-time checks (never to an opted-out patient, never in quiet hours,
never a condition word), who wrote them, handled and assigned."""

from __future__ import annotations

import uuid
from typing import Any

from tests.messenger.conftest import Messenger, night_zone, wait_for

QUESTION = "How much will the visit cost me?"


def key() -> str:
    return uuid.uuid4().hex


async def inbox(messenger: Messenger, clinic: str, view: str = "waiting", **kw: Any) -> list[Any]:
    headers = kw.pop("headers", None) or messenger.token("viewer", [clinic])
    response = await messenger.client.get(
        "/inbox", params={"clinic_id": clinic, "view": view}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["conversations"])


async def staff_reply(
    messenger: Messenger, patient_key: str, body: str, reply_key: str | None = None, **kw: Any
) -> Any:
    clinic = patient_key.split(":")[0]
    return await messenger.client.post(
        f"/inbox/conversations/{patient_key}/replies",
        json={"body": body, "reply_key": reply_key or key(), **kw},
        headers=messenger.token("operator", [clinic]),
    )


async def test_a_question_waits_in_the_inbox_with_the_words_and_the_reading(
    messenger: Messenger,
) -> None:
    asking, _ = await messenger.new_patient()
    clinic = asking.split(":")[0]
    booking, _ = await messenger.new_patient(clinic)
    await messenger.reply(asking, QUESTION)
    await messenger.reply(booking, "yes please book me in")
    waiting = await inbox(messenger, clinic)
    assert [c["patient_key"] for c in waiting] == [asking]
    item = waiting[0]
    assert item["words"] == QUESTION and item["waiting_replies"] == 1
    assert item["reading"]["intent"] == "question" and item["reading"]["barrier"] == "cost"
    assert 0 < item["reading"]["confidence"] <= 1
    other = await messenger.client.get(
        "/inbox", params={"clinic_id": clinic}, headers=messenger.token("viewer", ["elsewhere"])
    )
    assert other.status_code == 403 and asking not in other.text


async def test_a_red_flag_conversation_comes_first(messenger: Messenger) -> None:
    first, _ = await messenger.new_patient()
    clinic = first.split(":")[0]
    worried, _ = await messenger.new_patient(clinic)
    await messenger.reply(first, QUESTION)
    await messenger.reply(worried, "the mole is bleeding a lot")
    waiting = await inbox(messenger, clinic)
    assert [c["patient_key"] for c in waiting] == [worried, first]
    assert waiting[0]["red_flag"] is True


async def test_a_staff_reply_reaches_the_patient_once_and_says_who_wrote_it(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    await messenger.reply(patient_key, QUESTION)
    form = key()
    words = "A skin check is $150; we can also check your plan's cover. Nurse Kim"
    sent = await staff_reply(messenger, patient_key, words, form)
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["message_id"]

    async def arrived() -> bool:
        return any(m["message_id"] == message_id for m in await messenger.sandbox(patient_key))

    assert await wait_for(arrived)
    again = await staff_reply(messenger, patient_key, words, form)
    assert again.status_code == 201 and again.json() == {**sent.json(), "duplicate": True}
    copies = [m for m in await messenger.sandbox(patient_key) if m["body"] == words]
    assert len(copies) == 1
    view = (
        await messenger.client.get(
            f"/inbox/conversations/{patient_key}", headers=messenger.token("viewer", [clinic])
        )
    ).json()
    mine = [m for m in view["messages"] if m["message_id"] == message_id]
    assert mine[0]["author"] == "operator-1" and mine[0]["direction"] == "outbound"
    assert view["waiting"] is False and view["handled_by"] == "operator-1"
    assert await inbox(messenger, clinic) == []


async def test_staff_can_never_text_a_patient_who_opted_out(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, QUESTION)
    await messenger.reply(patient_key, "STOP")
    refused = await staff_reply(messenger, patient_key, "We can help with the cost.")
    assert refused.status_code == 409
    assert refused.json()["detail"]["reason"] == "opted_out"
    queued = await messenger.scalar(
        "SELECT count(*) FROM messenger.staff_replies WHERE patient_key = :pk", pk=patient_key
    )
    assert queued == 0


async def test_staff_replies_wait_for_the_end_of_quiet_hours(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient(zone=night_zone())
    await messenger.reply(patient_key, QUESTION)
    refused = await staff_reply(messenger, patient_key, "We can help with the cost.")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail["reason"] == "quiet_hours" and detail["retry_after"]


async def test_a_staff_text_never_names_a_condition(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, QUESTION)
    words = "Your biopsy results are in, please call us"
    refused = await staff_reply(messenger, patient_key, words)
    assert refused.status_code == 422
    assert refused.json()["detail"]["reason"] == "condition_word"
    assert "biopsy" not in refused.text  # the refusal never echoes the words
    rows = await messenger.rows(
        "SELECT 1 FROM messenger.outgoing WHERE patient_key = :pk AND body = :b",
        pk=patient_key,
        b=words,
    )
    assert rows == []


async def test_handled_clears_the_conversation_until_the_patient_writes_again(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    await messenger.reply(patient_key, QUESTION)
    operator = messenger.token("operator", [clinic])
    done = await messenger.client.post(
        f"/inbox/conversations/{patient_key}/handled", headers=operator
    )
    assert done.status_code == 200
    assert await inbox(messenger, clinic) == []
    assert [c["patient_key"] for c in await inbox(messenger, clinic, "handled")] == [patient_key]
    await messenger.reply(patient_key, "Is there parking near the clinic?")
    waiting = await inbox(messenger, clinic)
    assert [c["patient_key"] for c in waiting] == [patient_key]
    assert waiting[0]["waiting_replies"] == 1


async def test_a_conversation_is_assigned_to_a_colleague_and_viewers_cannot_act(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    await messenger.reply(patient_key, QUESTION)
    url = f"/inbox/conversations/{patient_key}/assign"
    viewer = messenger.token("viewer", [clinic])
    assert (await messenger.client.post(url, json={}, headers=viewer)).status_code == 403
    assert (
        await messenger.client.post(
            f"/inbox/conversations/{patient_key}/replies",
            json={"body": "hello", "reply_key": key()},
            headers=viewer,
        )
    ).status_code == 403
    given = await messenger.client.post(
        url, json={"assigned_to": "operator-1"}, headers=messenger.token("operator", [clinic])
    )
    assert given.status_code == 200
    mine = await inbox(messenger, clinic, "mine", headers=messenger.token("operator", [clinic]))
    assert [c["assigned_to"] for c in mine] == ["operator-1"]
    theirs = await inbox(messenger, clinic, "mine", headers=messenger.token("viewer", [clinic]))
    assert theirs == []
