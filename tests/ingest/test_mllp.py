"""MLLP with a real TCP client: framing, ACK/NAK, several messages per connection, and a client
that disconnects in the middle of a frame."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.ingest.conftest import Ingest
from tests.ingest.test_hl7v2_mapping import siu

pytestmark = pytest.mark.integration
START, END = b"\x0b", b"\x1c\x0d"


class MllpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> MllpClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, message: str) -> None:
        self.writer.write(START + message.encode() + END)

    async def ack(self) -> list[str]:
        frame = await asyncio.wait_for(self.reader.readuntil(END), timeout=10)
        assert frame.startswith(START)
        return frame[1:-2].decode().strip("\r").split("\r")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def test_pipelined_messages_on_one_connection_are_each_acknowledged_in_order(
    ingest: Ingest,
) -> None:
    clinic_id, key = await ingest.new_clinic("mllp")
    client = await MllpClient.connect(ingest.mllp_port)
    messages = [
        siu(security=key),
        siu(
            "S13",
            control="M2",
            security=key,
            sent="20261121090000-0600",
            start="20261201100000-0600",
        ),
        siu("S15", control="M3", security=key, pid3=""),
        siu(security=key),  # the first one again: a resend
    ]
    for message in messages:
        client.send(message)
    await client.writer.drain()
    acks = [await client.ack() for _ in messages]
    await client.close()
    assert [a[1][:9] for a in acks] == ["MSA|AA|M1", "MSA|AA|M2", "MSA|AE|M3", "MSA|AA|M1"]
    assert acks[0][0].split("|")[8] == "ACK^S12^ACK"
    assert acks[2][2].startswith("ERR||PID^1^3|101^Required field missing^HL70357|E")
    events = await ingest.topic_events(clinic_id, 4)
    assert [e["type"] for e in events if e["type"] != "PatientUpserted"] == [
        "AppointmentBooked",
        "AppointmentRescheduled",
    ]
    stored = await ingest.scalar(
        "SELECT raw FROM ingest.source_messages WHERE clinic_id = :c LIMIT 1", c=clinic_id
    )
    assert key.encode() not in bytes(stored)  # MSH-8 is blanked before the message is kept


async def test_a_client_that_disconnects_mid_frame_leaves_nothing_behind(ingest: Ingest) -> None:
    clinic_id, key = await ingest.new_clinic("midframe")
    client = await MllpClient.connect(ingest.mllp_port)
    whole = START + siu(security=key, control="HALF").encode() + END
    client.writer.write(whole[: len(whole) // 2])
    await client.writer.drain()
    await client.close()
    await asyncio.sleep(0.3)
    assert (
        await ingest.scalar(
            "SELECT count(*) FROM ingest.source_messages WHERE clinic_id = :c", c=clinic_id
        )
        == 0
    )
    again = await MllpClient.connect(ingest.mllp_port)  # the listener is still serving
    again.send(siu(security=key, control="WHOLE"))
    assert (await again.ack())[1] == "MSA|AA|WHOLE"
    await again.close()
    assert await ingest.events_staged(clinic_id) == 2


async def test_garbage_and_unauthenticated_messages_get_a_nak_and_the_connection_lives_on(
    ingest: Ingest,
) -> None:
    client = await MllpClient.connect(ingest.mllp_port)
    client.writer.write(b"no start block" + END)
    client.send("not hl7 at all")
    client.send(siu())  # no key in MSH-8 and the listener is not bound to a clinic
    client.send(siu(security="rvk_0000000000000000_" + "x" * 43))
    await client.writer.drain()
    acks = [await client.ack() for _ in range(4)]
    await client.close()
    assert [a[1] for a in acks][:2] == [
        "MSA|AR||MLLP: a block starts with 0x0B",
        "MSA|AR||MSH: a message must start with an MSH segment",
    ]
    assert acks[2][1].startswith("MSA|AR|M1|MSH-8: no API key")
    assert acks[3][1].startswith("MSA|AR|M1|MSH-8: invalid API key")


async def test_a_revoked_key_is_refused(ingest: Ingest) -> None:
    clinic_id, key = await ingest.new_clinic("revoked")
    key_id = key.split("_")[1]
    answer = await ingest.client.post(
        f"/admin/api-keys/{key_id}/revoke", headers=ingest.admin([clinic_id])
    )
    assert answer.status_code == 200
    client = await MllpClient.connect(ingest.mllp_port)
    client.send(siu(security=key))
    ack = await client.ack()
    await client.close()
    assert ack[1].startswith("MSA|AR|M1|MSH-8: API key revoked")


async def test_many_connections_at_once_are_committed_together_and_all_acknowledged(
    ingest: Ingest,
) -> None:
    clinic_id, key = await ingest.new_clinic("burst")
    batcher = ingest.runtime.extras["ingest"].batcher
    batches_before = batcher.batches

    async def sender(n: int) -> list[str]:
        client = await MllpClient.connect(ingest.mllp_port)
        for i in range(5):
            client.send(siu(security=key, control=f"C{n}-{i}", pid3=f"P{n}^^^D^MR"))
        await client.writer.drain()
        found = [(await client.ack())[1] for _ in range(5)]
        await client.close()
        return found

    results = await asyncio.gather(*(sender(n) for n in range(8)))
    assert all(line.startswith("MSA|AA|") for lines in results for line in lines)
    assert await ingest.events_staged(clinic_id) == 80
    assert batcher.batches - batches_before < 40  # 40 messages, fewer transactions


async def test_a_frame_larger_than_the_limit_is_refused_and_the_connection_closed(
    ingest: Ingest,
) -> None:
    _, key = await ingest.new_clinic("large")
    limit = ingest.runtime.extras["ingest"].settings.mllp_max_message_bytes
    client = await MllpClient.connect(ingest.mllp_port)
    client.send(siu(security=key) + "\rNTE|1||" + "x" * limit)
    await client.writer.drain()
    ack = await client.ack()
    assert ack[1] == f"MSA|AR||MLLP: larger than {limit} bytes"
    assert await asyncio.wait_for(client.reader.read(), timeout=10) == b""  # closed
    await client.close()
