"""Notifier contracts against a real local HTTP server that records every request."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.escalation.domain import Action
from services.escalation.notifiers import PageNotice
from services.escalation.notifiers.pagerduty import PagerDutyNotifier
from services.escalation.notifiers.slack import SlackNotifier
from services.escalation.notifiers.webhook import (
    SignatureRejected,
    WebhookNotifier,
    sign,
    verify_signature,
)
from tests.escalation.conftest import RecordingServer, Reply

ROUTING_KEY = "R0UTINGKEY-synthetic-0123456789ab"
SECRET = "whsec-synthetic-signing-secret"
PATIENT_KEY = "clinic-n:pt-4471"


def notice(action: Action = Action.trigger, attempt: int = 1) -> PageNotice:
    return PageNotice(
        page_id=7,
        escalation_id="esc-0f3a",
        action=action,
        clinic_id="clinic-n",
        rotation_id="dermatologist-on-call",
        responder_id="dr-a",
        attempt=attempt,
        case_type="red_flag",
        severity="urgent",
        summary="Patient reports a new or changing mole after a skin-check recall",
        raised_at=datetime(2026, 3, 4, 3, 0, tzinfo=UTC),
        case_url="https://revisit.example.org/escalation/cases/esc-0f3a",
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def pagerduty(client: httpx.AsyncClient, server: RecordingServer, timeout: float = 2.0) -> Any:
    return PagerDutyNotifier(
        client, ROUTING_KEY, events_url=f"{server.url}/v2/enqueue", timeout=timeout
    )


def _shape(value: Any) -> str:
    return type(value).__name__


# --- PagerDuty Events API v2 ---------------------------------------------------------------------


async def test_a_pagerduty_trigger_has_the_documented_shape(
    client: httpx.AsyncClient, server: RecordingServer, realdata_dir: Path
) -> None:
    example = json.loads((realdata_dir / "pagerduty/events_v2_trigger_example.json").read_text())
    server.default = Reply(
        202, (realdata_dir / "pagerduty/events_v2_response_202.json").read_bytes()
    )
    result = await pagerduty(client, server).deliver(notice())
    assert result.ok
    [request] = server.received
    assert request.path == "/v2/enqueue"
    assert request.headers["content-type"] == "application/json"
    sent = request.json()
    # Every field we send is one PagerDuty documents, with the documented JSON type.
    assert set(sent) <= set(example)
    assert {k: _shape(v) for k, v in sent.items()} == {k: _shape(example[k]) for k in sent}
    assert set(sent["payload"]) <= set(example["payload"])
    assert {k: _shape(v) for k, v in sent["payload"].items()} == {
        k: _shape(example["payload"][k]) for k in sent["payload"]
    }
    assert {"summary", "source", "severity"} <= set(sent["payload"])
    assert sent["payload"]["severity"] in {"critical", "error", "warning", "info"}
    assert set(sent["links"][0]) == set(example["links"][0])
    assert datetime.fromisoformat(sent["payload"]["timestamp"]).tzinfo is not None
    assert (sent["event_action"], sent["routing_key"], sent["dedup_key"]) == (
        "trigger",
        ROUTING_KEY,
        "esc-0f3a",
    )
    assert sent["payload"]["severity"] == "critical"
    assert len(sent["payload"]["summary"]) <= 1024


async def test_the_response_dedup_key_is_kept_as_the_provider_reference(
    client: httpx.AsyncClient, server: RecordingServer, realdata_dir: Path
) -> None:
    answer = (realdata_dir / "pagerduty/events_v2_response_202.json").read_bytes()
    server.default = Reply(202, answer)
    result = await pagerduty(client, server).deliver(notice())
    assert result.provider_ref == json.loads(answer)["dedup_key"]


@pytest.mark.parametrize("action", [Action.acknowledge, Action.resolve])
async def test_acknowledge_and_resolve_carry_only_the_incident_key(
    client: httpx.AsyncClient, server: RecordingServer, action: Action
) -> None:
    assert (await pagerduty(client, server).deliver(notice(action))).ok
    assert server.received[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": action.value,
        "dedup_key": "esc-0f3a",
    }


async def test_every_repage_of_a_case_uses_the_same_dedup_key(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    notifier = pagerduty(client, server)
    for attempt in (1, 2, 3):
        await notifier.deliver(notice(attempt=attempt))
    assert {r.json()["dedup_key"] for r in server.received} == {"esc-0f3a"}


async def test_nothing_about_the_patient_is_sent_to_the_pager(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    await pagerduty(client, server).deliver(notice())
    await SlackNotifier(client, f"{server.url}/hook").deliver(notice())
    await WebhookNotifier(client, f"{server.url}/wh", SECRET).deliver(notice())
    for request in server.received:
        assert b"pt-4471" not in request.body and PATIENT_KEY.encode() not in request.body


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (403, False)]
)
async def test_server_errors_and_throttling_are_retried_bad_requests_are_not(
    client: httpx.AsyncClient, server: RecordingServer, status: int, retryable: bool
) -> None:
    server.default = Reply(status, b'{"status":"invalid event"}')
    result = await pagerduty(client, server).deliver(notice())
    assert not result.ok
    assert result.retryable is retryable
    assert result.detail == f"http {status}"


async def test_a_timeout_is_retried_and_says_nothing_secret(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    server.default = Reply(202, delay_s=1.0)
    result = await pagerduty(client, server, timeout=0.2).deliver(notice())
    assert (result.ok, result.retryable, result.detail) == (False, True, "timeout")


async def test_an_unreachable_provider_is_retried_and_the_error_names_no_url_or_key(
    client: httpx.AsyncClient,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = PagerDutyNotifier(client, ROUTING_KEY, events_url=f"http://127.0.0.1:{port}/x")
    result = await notifier.deliver(notice())
    assert result.retryable and result.detail.startswith("transport error")
    for text in (result.detail, repr(notifier)):
        assert ROUTING_KEY not in text and str(port) not in result.detail


# --- Slack ---------------------------------------------------------------------------------------


async def test_a_slack_page_is_one_short_message_with_a_link(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    server.default = Reply(200, b"ok")
    notifier = SlackNotifier(client, f"{server.url}/services/T000/B000/XXXX")
    assert (await notifier.deliver(notice())).ok
    sent = server.received[0].json()
    assert set(sent) == {"text", "blocks"}
    assert "URGENT" in sent["text"] and "esc-0f3a" in sent["text"] and "dr-a" in sent["text"]
    assert "<https://revisit.example.org/escalation/cases/esc-0f3a|open the case>" in sent["text"]
    assert sent["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "XXXX" not in repr(notifier)


async def test_a_dead_slack_hook_is_not_retried_but_a_slack_outage_is(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    notifier = SlackNotifier(client, f"{server.url}/hook")
    server.replies = [Reply(404, b"no_service"), Reply(500, b"")]
    gone, down = await notifier.deliver(notice()), await notifier.deliver(notice())
    assert (gone.retryable, down.retryable) == (False, True)


# --- signed webhook ------------------------------------------------------------------------------


async def test_a_webhook_is_signed_over_timestamp_and_body_and_the_receiver_verifies_it(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    sent_at = 1_767_225_600
    notifier = WebhookNotifier(client, f"{server.url}/wh", SECRET, wall_time=lambda: sent_at)
    assert (await notifier.deliver(notice())).ok
    [request] = server.received
    ts, sig = request.headers["x-revisit-timestamp"], request.headers["x-revisit-signature"]
    assert ts == str(sent_at)
    assert sig == sign(SECRET, ts, request.body)
    verify_signature(SECRET, ts, request.body, sig, now=sent_at + 299)
    assert request.headers["idempotency-key"] == "esc-0f3a:trigger:1"
    body = request.json()
    assert (body["type"], body["escalation_id"], body["attempt"]) == (
        "escalation.trigger",
        "esc-0f3a",
        1,
    )
    with pytest.raises(SignatureRejected, match="does not match"):
        verify_signature(SECRET, ts, request.body.replace(b"urgent", b"low"), sig, now=sent_at)
    with pytest.raises(SignatureRejected, match="does not match"):
        verify_signature("another-secret", ts, request.body, sig, now=sent_at)


def test_the_receiver_rejects_replays_older_than_five_minutes_and_far_future_stamps() -> None:
    body, ts = b'{"type":"escalation.trigger"}', "1767225600"
    sig = sign(SECRET, ts, body)
    verify_signature(SECRET, ts, body, sig, now=1_767_225_600 + 300)
    for now in (1_767_225_600 + 301, 1_767_225_600 - 301):
        with pytest.raises(SignatureRejected, match="replay window"):
            verify_signature(SECRET, ts, body, sig, now=now)
    with pytest.raises(SignatureRejected, match="missing"):
        verify_signature(SECRET, None, body, sig, now=1_767_225_600)
    with pytest.raises(SignatureRejected, match="whole number"):
        verify_signature(SECRET, "soon", body, sig, now=1_767_225_600)


def test_a_receiver_accepts_either_signature_while_the_sender_rotates_its_secret() -> None:
    body, ts = b"{}", "1767225600"
    both = f"{sign('old-secret', ts, body)}, {sign(SECRET, ts, body)}"
    verify_signature(SECRET, ts, body, both, now=1_767_225_600)


async def test_webhook_retries_on_500_and_on_timeout(
    client: httpx.AsyncClient, server: RecordingServer
) -> None:
    notifier = WebhookNotifier(client, f"{server.url}/wh", SECRET, timeout=0.2)
    server.replies = [Reply(500), Reply(200, delay_s=1.0)]
    failed, slow = await notifier.deliver(notice()), await notifier.deliver(notice())
    assert (failed.retryable, failed.detail) == (True, "http 500")
    assert (slow.retryable, slow.detail) == (True, "timeout")
    keys = {r.headers["idempotency-key"] for r in server.received}
    assert keys == {"esc-0f3a:trigger:1"}
