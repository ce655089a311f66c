"""Message words and consumed-event ids are kept for their periods, then pruned by the service."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from services.messenger.body_retention import REMOVED
from shared.retention import inbox_job
from tests.messenger.conftest import Messenger, envelope, send_step

AGE = "now() - interval '400 days'"


async def test_the_messenger_prunes_inbox_rows_and_old_message_words_in_its_sweep(
    messenger: Messenger,
) -> None:
    retention = messenger.runtime.retention
    assert {"inbox", "audit", "message_bodies"} <= set(retention.jobs)
    assert messenger.runtime.loops.status().get("pruning") == "up"

    old_key, _ = await messenger.new_patient()
    new_key, _ = await messenger.new_patient()
    for key in (old_key, new_key):
        await messenger.handle("commands", envelope(send_step(), key))
        await messenger.outbound(key, 1)
        await messenger.reply(key, "Can I ask about the scar on my cheek, Marisol here")
    for table, column in (
        ("outgoing", "created_at"),
        ("inbound", "received_at"),
        ("sandbox_messages", "created_at"),
    ):
        async with messenger.runtime.engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE messenger.{table} SET {column} = {AGE} WHERE patient_key = :k"),
                {"k": old_key},
            )

    done = await retention.sweep_once()
    assert done["message_bodies"] >= 3

    for table in ("outgoing", "inbound", "sandbox_messages"):
        old = await messenger.rows(
            f"SELECT body FROM messenger.{table} WHERE patient_key = :k", k=old_key
        )
        new = await messenger.rows(
            f"SELECT body FROM messenger.{table} WHERE patient_key = :k", k=new_key
        )
        assert old and {r["body"] for r in old} == {REMOVED}, table
        assert new and REMOVED not in {r["body"] for r in new}, table
    reading = await messenger.rows(
        "SELECT summary, reading, intent FROM messenger.inbound WHERE patient_key = :k",
        k=old_key,
    )
    assert reading[0]["summary"] is None and reading[0]["reading"] is None
    assert reading[0]["intent"]  # what the patient meant, in categories, stays for the figures


async def test_consumed_event_ids_older_than_the_inbox_period_are_removed(
    messenger: Messenger,
) -> None:
    consumer = f"retention-test-{uuid.uuid4().hex[:8]}"
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with messenger.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO messenger.inbox (consumer, event_id, processed_at) VALUES "
                f"(:c, :o, {AGE}), (:c, :r, now())"
            ),
            {"c": consumer, "o": old, "r": recent},
        )
    assert await inbox_job(messenger.runtime.engine, "messenger", 30)() >= 1
    left = await messenger.rows(
        "SELECT event_id FROM messenger.inbox WHERE consumer = :c", c=consumer
    )
    assert [r["event_id"] for r in left] == [recent]
