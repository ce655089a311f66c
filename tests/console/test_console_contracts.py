"""One contract, two implementations: the console's messenger and escalation clients behave the
same on the fakes the route tests use and on the real httpx clients talking to the real
services (in process, on the embedded Postgres and broker). If a fake drifts from its service,
these fail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.console.adapters.base import ApiError
from services.console.adapters.escalation import EscalationApi, HttpEscalationApi
from services.console.adapters.messenger import HttpMessengerApi, MessengerApi
from shared.auth import issue_staff_token
from tests.console.fakes import FakeEscalation, FakeMessenger
from tests.console.world import build_world
from tests.console.world import case as fake_case
from tests.console.world import conversation as fake_conversation

pytestmark = pytest.mark.integration
QUESTION = "How much does the visit cost?"


@dataclass
class Side:
    """One implementation with a patient who asked a question and a red-flag case."""

    messenger: MessengerApi
    escalation: EscalationApi
    token: Callable[[str, str], str]  # (role, clinic) -> credential
    clinic: str
    patient_key: str
    case_id: str
    wait_sent: Callable[[str], Awaitable[bool]]  # message id -> reached the sandbox phone


def _fake_side() -> Side:
    world = build_world()
    clinic = f"clinic-f{uuid.uuid4().hex[:6]}"
    patient = f"{clinic}:p-1"
    world.conversations[patient] = fake_conversation(patient, QUESTION, "question")
    world.inbox[patient] = {}
    world.contacts[patient] = {"given_name": "Ana"}
    world.cases["esc-1"] = fake_case("esc-1", patient, "red_flag", "urgent", 3)

    async def sent(message_id: str) -> bool:
        return any(m["message_id"] == message_id for m in world.conversations[patient])

    return Side(
        FakeMessenger(world),
        FakeEscalation(world),
        lambda role, c: f"fake:{role}-1:{role}:{c}",
        clinic,
        patient,
        "esc-1",
        sent,
    )


@pytest.fixture(scope="module")
async def real_side(pg: Any, kafka: Any) -> AsyncIterator[Side]:
    from revisit.migrate import migrate_all
    from services.messenger.app import create_app
    from services.messenger.settings import MessengerSettings
    from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
    from shared.kafka import ensure_topics
    from tests.escalation.helpers import eventually, raised_event
    from tests.escalation.service_harness import JWT, T0, running_service
    from tests.messenger.conftest import Messenger, envelope, patient_upserted, phone

    await migrate_all(pg.dsn)
    await ensure_topics(kafka.bootstrap, 3)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=pg.dsn),
        kafka=KafkaSettings(kafka_bootstrap_servers=kafka.bootstrap),
        auth=AuthSettings(revisit_jwt_secret=JWT),
        revisit_profile="test",
        revisit_poll_interval_ms=50,
    )
    app = create_app(settings, MessengerSettings(lease_seconds=4.0))
    async with (
        app.router.lifespan_context(app),
        running_service(pg.dsn, kafka.bootstrap) as esc,
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://messenger") as m_http:
            helper = Messenger(app, m_http, app.state.runtime, settings, kafka.bootstrap)
            clinic = esc.clinic  # one clinic across both services
            patient = f"{clinic}:p-{uuid.uuid4().hex[:6]}"
            await helper.handle(
                "contacts", envelope(patient_upserted(phone_number=phone()), patient)
            )

            def token(role: str, c: str) -> str:
                return issue_staff_token(
                    JWT,
                    subject=f"{role}-1",
                    role=role,  # type: ignore[arg-type]
                    clinics=[c],
                    ttl=timedelta(hours=1),
                )

            await m_http.post(
                "/sandbox/reply",
                json={"clinic_id": clinic, "patient_key": patient, "body": QUESTION},
                headers={"Authorization": f"Bearer {token('operator', clinic)}"},
            )
            event = raised_event(clinic, at=T0)
            await esc.publish(event)
            case_id = event.payload.escalation_id
            viewer = {"Authorization": f"Bearer {token('viewer', clinic)}"}

            async def stored() -> bool:
                return (
                    await esc.client.get(f"/cases/{case_id}", headers=viewer)
                ).status_code == 200

            assert await eventually(stored, timeout=20)

            async def sent(message_id: str) -> bool:
                async def there() -> bool:
                    return any(m["message_id"] == message_id for m in await helper.sandbox(patient))

                return bool(await eventually(there, timeout=10))

            yield Side(
                HttpMessengerApi(m_http, "http://messenger"),
                HttpEscalationApi(esc.client, "http://escalation"),
                token,
                clinic,
                patient,
                case_id,
                sent,
            )


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest) -> Side:
    if request.param == "fake":
        return _fake_side()
    found: Side = request.getfixturevalue("real_side")
    return found


async def test_the_inbox_lists_the_question_with_its_words_and_reading(side: Side) -> None:
    rows = await side.messenger.inbox(side.token("viewer", side.clinic), side.clinic, "waiting")
    [row] = [r for r in rows if r["patient_key"] == side.patient_key]
    assert row["words"] == QUESTION and row["reading"]["intent"] == "question"
    assert {"waiting_since", "waiting_replies", "red_flag", "assigned_to"} <= set(row)


async def test_a_staff_reply_is_sent_once_and_signed_by_its_author(side: Side) -> None:
    token = side.token("operator", side.clinic)
    key = uuid.uuid4().hex
    first = await side.messenger.reply(
        token, side.patient_key, "We will call you today.", key, True
    )
    again = await side.messenger.reply(
        token, side.patient_key, "We will call you today.", key, True
    )
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["message_id"] == first["message_id"]
    assert await side.wait_sent(first["message_id"])
    view = await side.messenger.inbox_conversation(token, side.patient_key)
    [mine] = [m for m in view["messages"] if m["message_id"] == first["message_id"]]
    assert mine["author"] == "operator-1" and view["waiting"] is False


async def test_the_messenger_refuses_viewers_and_other_clinics(side: Side) -> None:
    with pytest.raises(ApiError) as viewer:
        await side.messenger.reply(
            side.token("viewer", side.clinic), side.patient_key, "hi", uuid.uuid4().hex, True
        )
    assert viewer.value.status == 403
    with pytest.raises(ApiError) as other:
        await side.messenger.inbox(side.token("viewer", "clinic-elsewhere"), side.clinic, "waiting")
    assert other.value.status == 403


async def test_a_case_is_taken_noted_and_hidden_from_other_clinics(side: Side) -> None:
    token = side.token("operator", side.clinic)
    queue = await side.escalation.queue(token, side.clinic)
    assert side.case_id in [c["escalation_id"] for c in queue]
    taken = await side.escalation.acknowledge(token, side.case_id)
    assert (taken["state"], taken["acknowledged_by"]) == ("acknowledged", "operator-1")
    await side.escalation.add_note(token, side.case_id, "Called, left a message.")
    notes = await side.escalation.notes(token, side.case_id)
    assert [(n["author"], n["note"]) for n in notes][-1] == (
        "operator-1",
        "Called, left a message.",
    )
    with pytest.raises(ApiError) as other:
        await side.escalation.case(side.token("operator", "clinic-elsewhere"), side.case_id)
    assert other.value.status == 404
