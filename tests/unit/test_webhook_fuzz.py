"""Fuzzing the provider webhook parsers: whatever arrives from the internet, the signature check
answers yes or no, a status maps to an outcome, an e-mail reply is cut to the patient's words or
refused with a 422, and a refusal never repeats what was sent. (The HL7 v2, FHIR and native
JSON parsers have theirs in tests/ingest/test_properties.py.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.messenger.providers.twilio import (
    compute_signature,
    status_callback_outcome,
    validate_signature,
)
from services.messenger.webhooks import reply_text
from shared.config import RevisitSettings
from shared.runtime import build_app

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MARKER = "QZXV9PATIENTWORDS"
# What Starlette hands a route for a header: latin-1 text.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
pairs = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=6)


@BOUNDED
@given(token=st.text(max_size=40), path=st.text(max_size=30), form=pairs, signature=header_text)
def test_any_signature_header_is_answered_yes_or_no_never_a_crash(
    token: str, path: str, form: list[tuple[str, str]], signature: str
) -> None:
    url = "https://messenger.example.org/webhooks/twilio/sms?" + path
    assert validate_signature(token, url, form, signature) in (True, False)
    assert validate_signature(token, url, json.dumps(dict(form)), signature) in (True, False)


@BOUNDED
@given(token=st.text(min_size=1, max_size=40), form=pairs, tamper=st.text(min_size=1, max_size=5))
def test_only_twilios_own_signature_is_accepted(
    token: str, form: list[tuple[str, str]], tamper: str
) -> None:
    url = "https://messenger.example.org/webhooks/twilio/sms"
    signature = compute_signature(token, url, form)
    assert validate_signature(token, url, form, signature)
    assert not validate_signature(token, url, [*form, ("Body", tamper)], signature)
    assert not validate_signature(token + "x", url, form, signature)


@BOUNDED
@given(status=st.text(max_size=20), error_code=st.none() | st.text(max_size=10))
def test_any_status_callback_maps_to_an_outcome(status: str, error_code: str | None) -> None:
    outcome, failure, permanent = status_callback_outcome(status, error_code)
    assert outcome in ("delivered", "failed", "pending")
    assert (failure is not None) == (outcome == "failed")
    assert isinstance(permanent, bool)


@BOUNDED
@given(text=st.text(max_size=3000), subject=st.none() | st.text(max_size=80))
def test_an_email_reply_is_cut_to_the_patients_words(text: str, subject: str | None) -> None:
    words = reply_text(text, subject)
    assert len(words) <= 2000
    assert words == "UNSUBSCRIBE" or words in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=12,
)


_APPS: list[Any] = []


def messenger() -> httpx.AsyncClient:
    """The messenger's app, built once (its routes refuse a bad body before any I/O)."""
    if not _APPS:
        from services.messenger.app import SPEC

        _APPS.append(
            build_app(
                SPEC,
                RevisitSettings(
                    db={"database_url": "postgresql+asyncpg://u:p@db/r"},
                    kafka={"kafka_bootstrap_servers": "kafka:9092"},
                ),
            )
        )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_APPS[0]), base_url="http://m")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    field=st.sampled_from(["message_id", "from", "to", "subject", "text", "in_reply_to"]),
    shape=st.sampled_from(["list", "number", "huge", "object"]),
)
async def test_a_malformed_email_webhook_is_refused_without_repeating_its_content(
    extra: dict[str, Any], field: str, shape: str
) -> None:
    wrong: Any = {
        "list": [MARKER],
        "number": {"n": MARKER},
        "huge": MARKER * 2000,
        "object": {MARKER: MARKER},
    }[shape]
    body = {"message_id": "<m-1@example.org>", "from": "p@example.org", **extra, field: wrong}
    async with messenger() as client:
        answer = await client.post("/webhooks/email/inbound", json=body)
    assert answer.status_code == 422
    assert MARKER not in answer.text
    # the ErrorBody every service answers with: where each problem is, never the value
    assert any(field in issue["where"] for issue in answer.json()["issues"])
