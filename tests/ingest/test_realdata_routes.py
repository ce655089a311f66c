"""Every third-party sample through the real service: FHIR and HL7 over HTTP, the CR copies over
MLLP; the events that reach ehr.events.v1 (or the refusal) match expectations.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.ingest.conftest import Ingest, read_clinic
from tests.ingest.expectations import FOLDERS, HL7, Expect
from tests.ingest.test_mllp import MllpClient

pytestmark = pytest.mark.integration


def with_key(message: str, key: str) -> str:
    """The message with the clinic's API key in MSH-8 (Security)."""
    head, _, rest = message.partition("\r")
    fields = head.split("|")
    fields += [""] * (9 - len(fields))
    fields[7] = key
    return "|".join(fields) + "\r" + rest


async def test_every_sample_reaches_the_topic_as_expected_over_http(
    ingest: Ingest, realdata_dir: Path
) -> None:
    run = f"c-rd-{uuid.uuid4().hex[:8]}"
    expected: dict[str, tuple[str, Expect]] = {}
    for folder in ("fhir", "synthea", "hl7v2"):
        for name, expect in FOLDERS[folder].items():
            clinic = f"{run}-{len(expected)}"
            expected[clinic] = (f"{folder}/{name}", expect)
            route = "/hl7v2" if folder == "hl7v2" else "/fhir/r4"
            body = (realdata_dir / folder / name).read_bytes()
            answer = await ingest.client.post(
                route,
                content=body,
                headers=ingest.bearer("ehr_writer", [clinic], "backfill-1"),
                params={"clinic_id": clinic},
            )
            if expect.refused is not None:
                assert answer.status_code == 422, (name, answer.text)
                assert answer.json()["detail"][0]["loc"] == expect.refused[0], name
            else:
                assert answer.status_code == 202, (name, answer.text)
                assert answer.json()["accepted"] == len(expect.events), name
    total = sum(len(e.events) for _, e in expected.values())
    records = await read_clinic(ingest.bootstrap, f"{run}-", total, timeout=20)
    found: dict[str, list[str]] = {}
    for record in records:
        found.setdefault(record["clinic_id"], []).append(record["type"])
    for clinic, (name, expect) in expected.items():
        assert tuple(found.get(clinic, [])) == expect.events, name


async def test_every_cr_separated_sample_is_acknowledged_as_expected_over_mllp(
    ingest: Ingest, realdata_dir: Path
) -> None:
    client = await MllpClient.connect(ingest.mllp_port)
    codes: dict[str, str] = {}
    try:
        for name, expect in HL7.items():
            _, key = await ingest.new_clinic("mllp-rd")
            text = (realdata_dir / "hl7v2" / "derived_cr" / name).read_text()
            client.send(with_key(text.strip("\r"), key))
            await client.writer.drain()
            msa = (await client.ack())[1].split("|")
            codes[name] = msa[1]
            if expect.refused is not None:
                assert msa[3].startswith(expect.refused[0]), (name, msa)
    finally:
        await client.close()
    assert codes == {name: _code(expect) for name, expect in HL7.items()}


def _code(expect: Expect) -> str:
    if expect.refused is None:
        return "AA"
    return "AR" if expect.reject else "AE"
