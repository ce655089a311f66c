"""The optional outside reader: its client against a local OpenAI-compatible server, and its
second reading inside the running messenger, which may add a red flag but never lowers one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.messenger.domain.red_flags import Safety
from services.messenger.replies.reader import OutsideReader
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import ReplyIntent
from shared.topics import ESCALATIONS
from tests.messenger.conftest import Messenger, envelope, send_step, types_of, wait_for
from tests.messenger.fake_llm import KEY, FakeLlm, running_llm

URGENT = {
    "consent": "none",
    "safety": "red_flag",
    "intent": "book",
    "barrier": "none",
    "confidence": 0.9,
}


@pytest.fixture
async def llm() -> AsyncIterator[FakeLlm]:
    async with running_llm() as fake:
        yield fake


async def test_the_reader_sends_the_documented_request_and_reads_the_answer(llm: FakeLlm) -> None:
    llm.reading = URGENT
    reader = OutsideReader(llm.base_url, "derm-reader", api_key=KEY, timeout_s=2)
    try:
        found = await reader.read("my lip feels weird", offered_slots=3, opted_out=False)
    finally:
        await reader.close()
    assert found is not None
    reading, suggestion = found
    assert reading.safety is Safety.red_flag and suggestion is ReplyIntent.book
    [request] = llm.requests
    assert request["model"] == "derm-reader" and request["temperature"] == 0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "offered 3 numbered times" in request["messages"][1]["content"]


@pytest.mark.parametrize("failure", ["slow", "500", "garbage"])
async def test_a_reader_that_is_slow_fails_or_talks_nonsense_gives_no_reading(
    llm: FakeLlm, failure: str
) -> None:
    llm.reading, llm.script = URGENT, [failure]
    reader = OutsideReader(llm.base_url, "m", api_key=KEY, timeout_s=0.5)
    try:
        assert await reader.read("hi", offered_slots=0, opted_out=False) is None
    finally:
        await reader.close()
    wrong_key = OutsideReader(llm.base_url, "m", api_key="nope", timeout_s=0.5)
    try:
        assert await wrong_key.read("hi", offered_slots=0, opted_out=False) is None
    finally:
        await wrong_key.close()


async def test_the_second_reading_adds_a_red_flag_the_local_layers_missed(
    messenger: Messenger, llm: FakeLlm
) -> None:
    llm.reading = URGENT
    reader = OutsideReader(llm.base_url, "m", api_key=KEY, timeout_s=2)
    messenger.ctx.reader = reader
    try:
        patient_key, _ = await messenger.new_patient()
        await messenger.handle("commands", envelope(send_step(), patient_key))
        await messenger.outbound(patient_key, 1)
        reply = await messenger.reply(patient_key, "ok thanks, see you")
        cases = await messenger.events(
            ESCALATIONS.name,
            patient_key,
            lambda es: "EscalationRaised" in types_of(es),
            timeout=20,
        )
    finally:
        messenger.ctx.reader = None
        await reader.close()
    [case] = [e.payload for e in cases if isinstance(e.payload, EscalationRaised)]
    assert case.case_type is CaseType.red_flag and case.severity is Severity.urgent
    assert case.source_message_id == reply["message_id"]
    answers = await messenger.outbound(patient_key, 2)
    assert "emergency" in answers[-1]["body"]
    assert await wait_for(
        lambda: messenger.scalar(
            "SELECT reading->'second_reading'->>'added' = 'true' AND safety = 'red_flag' "
            "FROM messenger.inbound WHERE message_id = :m",
            m=reply["message_id"],
        )
    )


async def test_the_second_reading_never_lowers_a_red_flag(
    messenger: Messenger, llm: FakeLlm
) -> None:
    llm.reading = {**URGENT, "safety": "none", "intent": "none"}
    reader = OutsideReader(llm.base_url, "m", api_key=KEY, timeout_s=2)
    messenger.ctx.reader = reader
    try:
        patient_key, _ = await messenger.new_patient()
        reply = await messenger.reply(patient_key, "the biopsy site is bleeding and won't stop")
        assert await wait_for(lambda: _has_second_reading(messenger, reply["message_id"]), 20)
    finally:
        messenger.ctx.reader = None
        await reader.close()
    row = await messenger.rows(
        "SELECT intent, safety FROM messenger.inbound WHERE message_id = :m",
        m=reply["message_id"],
    )
    assert row == [{"intent": "red_flag", "safety": "red_flag"}]
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    assert [e.payload.case_type for e in cases] == [CaseType.red_flag]


async def _has_second_reading(messenger: Messenger, message_id: str) -> bool:
    return bool(
        await messenger.scalar(
            "SELECT reading -> 'second_reading' IS NOT NULL FROM messenger.inbound "
            "WHERE message_id = :m",
            m=message_id,
        )
    )
