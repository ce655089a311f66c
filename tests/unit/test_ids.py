"""One rule for a clinic id and a patient key, everywhere: events, path and query parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from shared.events import ehr, new_event
from shared.events.common import EhrSource, SourceSystem
from shared.events.envelope import Envelope
from shared.ids import CLINIC_ID_RULE, PATIENT_KEY_RULE, ClinicId, PatientKey, clinic_of

CLINIC = TypeAdapter(ClinicId)
PATIENT = TypeAdapter(PatientKey)


@pytest.mark.parametrize("good", ["clinic-demo", "c1", "bluebonnet.derm_2", "x" * 64])
def test_a_clinic_id_is_a_short_token(good: str) -> None:
    assert CLINIC.validate_python(good) == good


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "a/b", "*", "x" * 65, "tab\there"])
def test_a_clinic_id_with_a_separator_or_the_wildcard_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CLINIC.validate_python(bad)
    assert CLINIC_ID_RULE in str(refused.value)


@pytest.mark.parametrize("good", ["clinic-demo:p-1", "c:1", "c:a:b", "c:MRN/7"])
def test_a_patient_key_is_a_clinic_id_a_colon_and_the_patient_id(good: str) -> None:
    assert PATIENT.validate_python(good) == good


@pytest.mark.parametrize("bad", ["p-1", ":p-1", "c:", "c: p1", "a/b:p", "*:p", "c:" + "p" * 199])
def test_a_malformed_patient_key_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PATIENT.validate_python(bad)
    assert PATIENT_KEY_RULE in str(refused.value)


def test_the_clinic_of_a_patient_key_is_what_comes_before_the_first_colon() -> None:
    assert clinic_of("clinic-demo:p:1") == "clinic-demo"


def test_both_are_path_and_query_parameters_refused_with_a_clear_422() -> None:
    app = FastAPI()

    @app.get("/clinics/{clinic_id}")
    def clinic(
        clinic_id: ClinicId, patient_key: Annotated[PatientKey | None, Query()] = None
    ) -> dict[str, str | None]:
        return {"clinic_id": clinic_id, "patient_key": patient_key}

    client = TestClient(app)
    assert client.get("/clinics/c1", params={"patient_key": "c1:p"}).status_code == 200
    refused = client.get("/clinics/c*1")
    assert refused.status_code == 422
    assert CLINIC_ID_RULE in refused.json()["detail"][0]["msg"]
    refused = client.get("/clinics/c1", params={"patient_key": "p-only"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "patient_key"]
    schema = app.openapi()["paths"]["/clinics/{clinic_id}"]["get"]["parameters"][0]["schema"]
    assert schema["maxLength"] == 64 and schema["description"] == CLINIC_ID_RULE


def test_the_event_envelope_applies_the_same_rule() -> None:
    payload = ehr.PatientUpserted(
        source=EhrSource(
            system=SourceSystem.json, record_id="p-1", source_updated_at=datetime.now(UTC)
        ),
        time_zone="America/Chicago",
    )
    event = new_event(payload, clinic_id="c1", patient_key="c1:p-1", occurred_at=datetime.now(UTC))
    doc = event.model_dump(mode="json")
    with pytest.raises(ValidationError) as refused:
        Envelope[ehr.PatientUpserted].model_validate({**doc, "patient_key": "c1 p-1"})
    assert PATIENT_KEY_RULE in str(refused.value)
    with pytest.raises(ValidationError):
        Envelope[ehr.PatientUpserted].model_validate({**doc, "clinic_id": "*"})
