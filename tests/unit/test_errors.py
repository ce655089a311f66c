"""One error shape: every refusal and failure is an ErrorBody that never repeats what was sent."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.auth import AuthError
from shared.errors import ERROR_RESPONSES, ErrorBody, Refusal, field_path, install_error_handlers
from shared.ids import CLINIC_ID_RULE, ClinicId

PHONE = "+15555550123"


class Contact(BaseModel):
    phone: str
    rank: int


class Card(BaseModel):
    contacts: list[Contact]


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/cases/{clinic_id}", responses=ERROR_RESPONSES)
    def case(clinic_id: ClinicId) -> Card:
        if clinic_id == "gone":
            raise HTTPException(404, "no such case")
        if clinic_id == "stopped":
            raise Refusal(409, "the patient opted out", error="opted_out", where="patient_key")
        if clinic_id == "anonymous":
            raise AuthError(401, "missing credentials")
        if clinic_id == "structured":
            raise HTTPException(409, {"reason": "quiet_hours", "retry_after": None})
        raise ValueError(f"the phone {PHONE} broke something")

    @app.post("/cards")
    def create(card: Card) -> Card:
        return card

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_an_http_exception_keeps_its_sentence_in_the_envelope(client: TestClient) -> None:
    answer = client.get("/cases/gone")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "not_found",
        "detail": "no such case",
        "where": None,
        "issues": [],
    }


def test_a_refusal_carries_its_own_code_and_field(client: TestClient) -> None:
    answer = client.get("/cases/stopped")
    assert answer.status_code == 409
    assert ErrorBody.model_validate(answer.json()) == ErrorBody(
        error="opted_out", detail="the patient opted out", where="patient_key"
    )


def test_an_authentication_refusal_keeps_its_challenge_header(client: TestClient) -> None:
    answer = client.get("/cases/anonymous")
    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    assert answer.json()["detail"] == "missing credentials"


def test_a_structured_detail_not_yet_converted_is_kept_for_its_callers(client: TestClient) -> None:
    answer = client.get("/cases/structured")
    assert answer.json()["error"] == "conflict"
    assert answer.json()["detail"]["reason"] == "quiet_hours"


def test_an_invalid_body_names_every_problem_by_path_and_never_echoes_a_value(
    client: TestClient,
) -> None:
    answer = client.post(
        "/cards", json={"contacts": [{"phone": PHONE, "rank": 1}, {"phone": PHONE, "rank": "x"}]}
    )
    assert answer.status_code == 422
    body = ErrorBody.model_validate(answer.json())
    assert body.error == "invalid_request"
    assert body.where == "body.contacts[1].rank"
    assert [i.where for i in body.issues] == ["body.contacts[1].rank"]
    assert body.detail.startswith("body.contacts[1].rank: ")
    assert PHONE not in answer.text


def test_an_invalid_path_parameter_says_the_rule(client: TestClient) -> None:
    answer = client.get("/cases/a:b")
    assert answer.status_code == 422
    assert answer.json()["where"] == "path.clinic_id"
    assert answer.json()["issues"][0]["problem"] == CLINIC_ID_RULE


def test_an_unexpected_error_is_a_500_without_its_message(client: TestClient) -> None:
    answer = client.get("/cases/boom")
    assert answer.status_code == 500
    body = ErrorBody.model_validate(answer.json())
    assert body.error == "internal"
    assert PHONE not in answer.text and "ValueError" not in answer.text


def test_an_unknown_path_answers_in_the_same_shape(client: TestClient) -> None:
    answer = client.get("/nowhere")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_declared_error_responses_show_the_envelope_in_openapi() -> None:
    doc = _app().openapi()
    answers = doc["paths"]["/cases/{clinic_id}"]["get"]["responses"]
    assert set(answers) >= {"200", "401", "403", "404", "409", "422"}
    assert answers["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


def test_a_field_path_reads_like_the_json_it_points_into() -> None:
    assert field_path(("body", "events", 1, "payload", "start")) == "body.events[1].payload.start"
    assert field_path(()) == "(request)"
