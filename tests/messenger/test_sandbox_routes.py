"""The sandbox's act-as-the-patient routes exist only while the sandbox is the configured
provider: with a real SMS provider an operator cannot reply as a patient (a START after a STOP,
a booking, an urgent page) and have the consent ledger record it as the patient's."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.messenger.app import create_app
from services.messenger.settings import MessengerSettings
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings

SANDBOX_PATHS = {"/sandbox/reply", "/sandbox/messages", "/sandbox/inbox", "/sandbox/feed"}
TWILIO = {
    "sms_provider": "twilio",
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "t" * 32,
    "twilio_from": "+15555550100",
}


def platform() -> RevisitSettings:
    # Building the app connects to nothing; these only need to be well-formed.
    return RevisitSettings(
        revisit_profile="test",
        db=DatabaseSettings(database_url="postgresql+asyncpg://u@127.0.0.1:1/x"),
        kafka=KafkaSettings(kafka_bootstrap_servers="127.0.0.1:1"),
        auth=AuthSettings(revisit_jwt_secret="s" * 40),
    )


def paths(messenger: MessengerSettings) -> set[str]:
    app = create_app(platform(), messenger)
    return set(app.openapi()["paths"])


def test_the_sandbox_routes_are_mounted_when_the_sandbox_is_the_provider() -> None:
    assert paths(MessengerSettings()) >= SANDBOX_PATHS


@pytest.mark.parametrize(
    "real",
    [
        TWILIO,
        {"email_provider": "smtp", "smtp_host": "mail.example", "smtp_from": "care@x.example"},
    ],
)
def test_with_a_real_provider_no_sandbox_route_exists(real: dict[str, str]) -> None:
    messenger = MessengerSettings(**real)  # type: ignore[arg-type]
    assert not SANDBOX_PATHS & paths(messenger)


def test_a_sandbox_reply_is_not_found_with_a_real_provider() -> None:
    app = create_app(platform(), MessengerSettings(**TWILIO))  # type: ignore[arg-type]
    client = TestClient(app)  # no lifespan: routing answers before anything runs
    answer = client.post("/sandbox/reply", json={"clinic_id": "c", "body": "START"})
    assert answer.status_code == 404
    assert "/sandbox/reply" not in client.get("/openapi.json").json()["paths"]
