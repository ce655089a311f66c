"""One poisoned message never fails another clinic's: it is refused alone (AR: do not resend),
its control id is checked before anything is stored, and the rest of its batch commits."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from services.ingest import submissions
from services.ingest.ingestion import ingestion_of
from tests.ingest.conftest import Ingest
from tests.ingest.test_hl7v2_mapping import CTX, siu
from tests.ingest.test_mllp import MllpClient

pytestmark = pytest.mark.integration


def _message(text: str, clinic: str) -> submissions.Submission:
    [sub] = submissions.hl7_body(text.encode(), clinic, None, CTX, "hl7v2")
    return sub


async def test_a_submission_that_cannot_be_stored_is_refused_alone_and_the_rest_commit(
    ingest: Ingest,
) -> None:
    good_clinic, _ = await ingest.new_clinic("good")
    bad_clinic, _ = await ingest.new_clinic("bad")
    batcher = ingestion_of(ingest.runtime).batcher
    good = [_message(siu(control=f"G{i}", pid3=f"P{i}^^^D^MR"), good_clinic) for i in range(3)]
    # Past every check, yet the database refuses it (text cannot hold NUL): what any
    # unforeseen storage failure of one message looks like.
    poisoned = dataclasses.replace(
        _message(siu(control="B1"), bad_clinic), source_key="hl7v2:EMA|DERM|B\x001"
    )
    futures = [batcher.enqueue([s]) for s in (good[0], poisoned, *good[1:])]  # one batch

    outcomes = [o for f in await asyncio.gather(*futures) for o in f]

    assert [o.status for o in outcomes] == ["accepted", "refused", "accepted", "accepted"]
    assert outcomes[1].hl7_code == "AR"  # never resend it as is
    assert await ingest.events_staged(good_clinic) > 0
    assert await ingest.events_staged(bad_clinic) == 0
    kept = await ingest.scalar(
        "SELECT count(*) FROM ingest.refused_messages WHERE clinic_id = :c", c=bad_clinic
    )
    assert kept == 1  # nothing lost: kept for a person and for replay


@pytest.mark.parametrize(
    ("control", "words"),
    [
        ("M\x001", "control character"),
        ("M\x07X", "control character"),
        ("M" * 200, "at most 199"),
    ],
    ids=["nul", "bell", "too-long"],
)
def test_control_ids_are_checked_before_anything_is_stored(control: str, words: str) -> None:
    sub = _message(siu(control=control), "clinic-1")
    assert sub.refused is not None and sub.refused.reject
    [problem] = sub.refused.problems
    assert problem.loc == "MSH-10" and words in problem.msg
    assert "\x00" not in (sub.source_key or "")


async def test_over_mllp_the_poisoned_message_gets_ar_with_its_reason_and_the_others_aa(
    ingest: Ingest,
) -> None:
    clinic_id, key = await ingest.new_clinic("mllp-poison")

    async def sender(n: int) -> list[list[str]]:
        client = await MllpClient.connect(ingest.mllp_port)
        texts = [siu(security=key, control=f"C{n}-{i}", pid3=f"P{n}^^^D^MR") for i in range(3)]
        if n == 2:
            texts[1] = siu(security=key, control="BAD\x00ID", pid3="PX^^^D^MR")
        for text in texts:
            client.send(text)
        await client.writer.drain()
        acks = [await client.ack() for _ in texts]
        await client.close()
        return acks

    results = await asyncio.gather(*(sender(n) for n in range(4)))
    flat = [ack for acks in results for ack in acks]
    codes = [ack[1].split("|")[1] for ack in flat]
    assert codes.count("AR") == 1 and codes.count("AA") == 11, codes
    [refused] = [ack for ack in flat if ack[1].split("|")[1] == "AR"]
    assert any(line.startswith("ERR") and "MSH-10" in line for line in refused)
    assert await ingest.events_staged(clinic_id) == 11 * 2  # PatientUpserted + the booking
