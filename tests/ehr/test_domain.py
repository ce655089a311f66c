"""The EHR write side's pure core: connection settings and their secret namespace, what a
CapabilityStatement allows, the resources read and written, identity decisions, the SMART
assertion and token responses, the chart's Communication, and the staff handoff case."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jwt
import pytest
from pydantic import ValidationError

from services.messenger.domain.conversation import ConversationState
from services.messenger.domain.system_messages import Reply, text_of
from services.messenger.ehr.domain import chart, smart
from services.messenger.ehr.domain import resources as fhir
from services.messenger.ehr.domain.capabilities import CapabilityError, read_capabilities
from services.messenger.ehr.domain.connection import (
    AuthKind,
    AuthSettings,
    CodeMappings,
    Coding,
    Connection,
    ConnectionSettings,
    WriteMode,
    secret_prefix,
    secret_problems,
)
from services.messenger.ehr.domain.handoff import HandoffReason, handoff_case
from services.messenger.ehr.domain.identity import Match, decide, search_tokens, still_fresh
from shared.events.common import Channel, RecordIdentifier, ServiceLine
from shared.events.escalations import CaseType
from tests.ehr.fixtures import ec_key, rsa_key

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
DOMAIN = Path(__file__).resolve().parents[2] / "services" / "messenger" / "ehr" / "domain"


def statement(*resources: dict[str, object], version: str = "4.0.1") -> dict[str, object]:
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": version,
        "software": {"name": "Some EHR"},
        "rest": [{"mode": "server", "resource": list(resources)}],
    }


def resource(kind: str, *codes: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "interaction": [{"code": c} for c in codes], **extra}


# --- purity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_nothing_that_does_io(path: Path) -> None:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    assert not found & {"sqlalchemy", "httpx", "fastapi", "faststream", "asyncpg", "aiokafka"}


# --- connections --------------------------------------------------------------------------------


def test_secrets_must_live_in_the_clinics_own_namespace() -> None:
    assert secret_prefix("clinic-demo") == "REVISIT_EHR_CLINIC_DEMO_"
    auth = AuthSettings(kind=AuthKind.smart_backend, client_id="c", key_env="REVISIT_EHR_OTHER_KEY")
    assert secret_problems("clinic-demo", auth) == [
        "auth.key_env: must start with REVISIT_EHR_CLINIC_DEMO_"
    ]
    ok = AuthSettings(kind=AuthKind.static, token_env="REVISIT_EHR_CLINIC_DEMO_TOKEN")
    assert secret_problems("clinic-demo", ok) == []


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        (AuthKind.static, "token_env"),
        (AuthKind.client_credentials, "client_id, secret_env, token_url"),
        (AuthKind.smart_backend, "client_id, key_env"),
    ],
)
def test_each_auth_kind_says_what_it_still_needs(kind: AuthKind, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"{kind.value} auth needs {missing}"):
        AuthSettings(kind=kind)


def test_a_secret_value_cannot_be_stored_in_place_of_its_variable_name() -> None:
    with pytest.raises(ValidationError):
        AuthSettings(kind=AuthKind.static, token_env="eyJhbGciOi.secret-token-value")


def test_codes_map_both_ways() -> None:
    m = CodeMappings(
        service_types={ServiceLine.skin_check: [Coding(system="urn:p", code="FBSE")]},
        practitioners={"DR-1": "prac-9"},
        locations={"EXAM3": "loc-4"},
    )
    assert [c.token for c in m.codings_for(ServiceLine.skin_check)] == ["urn:p|FBSE"]
    assert m.service_line_of({"urn:p|FBSE", "urn:x|Y"}) is ServiceLine.skin_check
    assert m.service_line_of({"urn:p|OTHER"}) is None
    assert (m.practitioner("DR-1"), m.provider_of("prac-9")) == ("prac-9", "DR-1")
    assert (m.practitioner("same-id"), m.provider_of("same-id")) == ("same-id", "same-id")
    assert (m.location("EXAM3"), m.location_of("loc-4")) == ("loc-4", "EXAM3")


def test_writing_needs_both_the_setting_and_the_servers_capability() -> None:
    caps = read_capabilities(statement(resource("Appointment", "create")))
    settings = ConnectionSettings(base_url="https://ehr.example/fhir")
    assert Connection(clinic_id="c", settings=settings, capabilities=caps).can_write_appointments()
    assert not Connection(clinic_id="c", settings=settings).can_write_appointments()
    staff = settings.model_copy(update={"write_mode": WriteMode.staff})
    assert not Connection(clinic_id="c", settings=staff, capabilities=caps).can_write_appointments()


# --- capabilities -------------------------------------------------------------------------------


def test_capabilities_are_read_from_the_statement() -> None:
    caps = read_capabilities(
        statement(
            resource("Patient", "read", "search-type", searchParam=[{"name": "identifier"}]),
            resource("Schedule", "search-type"),
            resource("Slot", "read", "search-type"),
            resource("Appointment", "create", conditionalCreate=True, operation=[{"name": "book"}]),
        )
    )
    assert caps.patient_identifier_search and caps.slot_search and caps.slot_read
    assert caps.appointment_create and caps.appointment_conditional_create
    assert caps.appointment_book_operation and not caps.communication_create
    assert caps.software == "Some EHR" and caps.notes == []


def test_a_server_without_appointment_create_says_bookings_go_to_staff() -> None:
    caps = read_capabilities(statement(resource("Slot", "search-type")))
    assert not caps.appointment_create
    assert caps.notes == ["Appointment: create not declared: bookings become staff tasks"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"resourceType": "Bundle"}, "not a CapabilityStatement"),
        (statement(version="3.0.2"), "Revisit speaks FHIR R4"),
        ({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}, "rest: missing"),
    ],
)
def test_an_unusable_statement_is_refused_with_the_field(
    document: dict[str, object], problem: str
) -> None:
    with pytest.raises(CapabilityError, match=problem):
        read_capabilities(document)


def test_the_token_endpoint_can_come_from_the_security_extension() -> None:
    doc = statement()
    doc["rest"][0]["security"] = {  # type: ignore[index]
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": "https://auth.example/token"}],
            }
        ]
    }
    assert read_capabilities(doc).token_url == "https://auth.example/token"


# --- resources ----------------------------------------------------------------------------------


def bundle(*resources: dict[str, object], mode: str | None = None) -> dict[str, object]:
    entries = [{"resource": r, **({"search": {"mode": mode}} if mode else {})} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def test_free_slots_leave_out_busy_past_and_other_service_slots() -> None:
    after = NOW
    later, soon = (NOW + timedelta(days=1)).isoformat(), (NOW + timedelta(hours=3)).isoformat()
    sched = {"reference": "Schedule/a"}
    slots = bundle(
        {"resourceType": "Slot", "id": "s2", "status": "free", "start": later, "schedule": sched},
        {"resourceType": "Slot", "id": "s1", "status": "free", "start": soon},
        {"resourceType": "Slot", "id": "busy", "status": "busy", "start": later},
        {"resourceType": "Slot", "id": "past", "status": "free", "start": NOW.isoformat()},
        {
            "resourceType": "Slot", "id": "other", "status": "free", "start": later,
            "serviceType": [{"coding": [{"system": "urn:p", "code": "LASER"}]}],
        },
    )  # fmt: skip
    found = fhir.free_slots(slots, after, {"urn:p|FBSE"})
    assert [s.slot_id for s in found] == ["s1", "s2"]
    assert found[1].schedule_id == "a"


def test_a_local_time_without_an_offset_is_read_in_the_ehrs_zone_or_not_at_all() -> None:
    local = {"resourceType": "Slot", "id": "s", "status": "free", "start": "2031-03-03T09:00:00"}
    chicago = fhir.slot(local, ZoneInfo("America/Chicago"))
    assert chicago is not None and chicago.start == datetime(2031, 3, 3, 15, 0, tzinfo=UTC)
    assert fhir.slot(local) is None


def test_included_resources_are_not_matches() -> None:
    included = bundle({"resourceType": "Patient", "id": "p1"}, mode="include")
    assert fhir.active_patient_ids(included) == set()


def test_merged_and_inactive_patients_are_not_matches() -> None:
    found = bundle(
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Patient", "id": "p2", "active": False},
        {"resourceType": "Patient", "id": "p3", "link": [{"type": "replaced-by"}]},
    )
    assert fhir.active_patient_ids(found) == {"p1"}


def test_the_appointment_names_everyone_the_service_and_revisits_identifier() -> None:
    slot = fhir.EhrSlot("s1", NOW, NOW + timedelta(minutes=30), "sch", "free")
    body = fhir.appointment(
        fhir.AppointmentRequest(
            booking_request_id="req-1",
            patient_id="pat-1",
            slot=slot,
            practitioner_id="prac-1",
            location_id="loc-1",
            service_types=(Coding(system="urn:p", code="FBSE"),),
            appointment_type=Coding(system="urn:v2-0276", code="ROUTINE"),
            reason="Skin check",
        )
    )
    assert body["status"] == "booked" and body["slot"] == [{"reference": "Slot/s1"}]
    assert [p["actor"]["reference"] for p in body["participant"]] == [
        "Patient/pat-1",
        "Practitioner/prac-1",
        "Location/loc-1",
    ]
    assert body["identifier"] == [{"system": fhir.BOOKING_SYSTEM, "value": "req-1"}]
    assert body["serviceType"] == [{"coding": [{"system": "urn:p", "code": "FBSE"}]}]
    assert body["appointmentType"] == {"coding": [{"system": "urn:v2-0276", "code": "ROUTINE"}]}
    assert body["reasonCode"] == [{"text": "Skin check"}] and body["end"]
    assert fhir.if_none_exist("req-1") == "identifier=urn:revisit:booking-request|req-1"


@pytest.mark.parametrize(
    ("status", "body", "conflict"),
    [
        (409, None, True),
        (412, None, True),
        (400, {"resourceType": "OperationOutcome", "issue": [{"code": "conflict"}]}, True),
        (422, {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}, False),
        (403, None, False),
    ],
)
def test_a_taken_slot_is_told_apart_from_a_refusal(
    status: int, body: object, conflict: bool
) -> None:
    assert fhir.is_conflict(status, body) is conflict


# --- identity -----------------------------------------------------------------------------------


def test_record_numbers_are_searched_in_the_ehrs_own_systems_mrn_first() -> None:
    known = [
        RecordIdentifier(value="77", assigner="OTHER"),
        RecordIdentifier(value="A-1", assigner="DERM1", type="PI"),
        RecordIdentifier(value="M-9", assigner="DERM1", type="MR"),
        RecordIdentifier(value="X-2", system="urn:oid:1.2.3"),
    ]
    tokens = search_tokens(known, {"DERM1": "urn:oid:9.9"})
    assert tokens == [
        ("urn:oid:9.9", "urn:oid:9.9|M-9"),
        ("urn:oid:9.9", "urn:oid:9.9|A-1"),
        ("urn:oid:1.2.3", "urn:oid:1.2.3|X-2"),
    ]  # OTHER has no known system: not searched


def test_exactly_one_patient_is_a_match_and_anything_else_is_for_a_person() -> None:
    assert decide({"s": {"p1"}, "t": {"p1"}}).match is Match.one
    assert decide({"s": {"p1"}, "t": {"p2"}}).match is Match.several
    assert decide({"s": {"p1", "p2"}}).match is Match.several
    assert decide({"s": set()}).match is Match.none
    assert decide({}).match is Match.no_identifier
    assert decide({"s": {"p1"}}).matched_on == "s"


def test_a_link_is_trusted_for_a_day() -> None:
    assert still_fresh(NOW - timedelta(hours=23), NOW)
    assert not still_fresh(NOW - timedelta(hours=25), NOW)
    assert not still_fresh(None, NOW)


# --- SMART --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_key", [rsa_key, ec_key], ids=["RS384", "ES384"])
def test_the_assertion_carries_what_smart_backend_services_asks(make_key: object) -> None:
    key = make_key()  # type: ignore[operator]
    assertion = smart.client_assertion(
        client_id="cid", token_url="https://auth/token", private_key_pem=key.private_pem,
        algorithm=key.algorithm, key_id=key.kid, now=NOW,
    )  # fmt: skip
    header = jwt.get_unverified_header(assertion)
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert header == {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("cid", "cid", "https://auth/token")
    assert claims["exp"] == int((NOW + timedelta(minutes=5)).timestamp())
    other = smart.client_assertion(
        client_id="cid", token_url="https://auth/token", private_key_pem=key.private_pem,
        algorithm=key.algorithm, key_id=key.kid, now=NOW,
    )  # fmt: skip
    assert jwt.decode(other, options={"verify_signature": False})["jti"] != claims["jti"]


def test_an_unusable_key_is_refused_without_showing_it() -> None:
    with pytest.raises(smart.TokenRefused) as refused:
        smart.client_assertion(
            client_id="c", token_url="u", private_key_pem="-----BEGIN junk", algorithm="RS384",
            key_id=None, now=NOW,
        )  # fmt: skip
    assert "junk" not in str(refused.value) and "signing_key_unusable" in refused.value.error


def test_token_responses_and_oauth_errors() -> None:
    token = smart.read_token(
        200, {"access_token": "t", "token_type": "Bearer", "expires_in": 300}, NOW
    )
    assert token.expires_at == NOW + timedelta(seconds=300)
    assert token.usable(NOW + timedelta(seconds=239)) and not token.usable(
        NOW + timedelta(seconds=241)
    )
    with pytest.raises(smart.TokenRefused, match="invalid_client"):
        smart.read_token(401, {"error": "invalid_client"}, NOW)
    with pytest.raises(smart.TokenRefused, match="without_bearer"):
        smart.read_token(200, {"access_token": "t", "token_type": "mac"}, NOW)


# --- the chart ----------------------------------------------------------------------------------


def test_a_sent_message_and_a_reply_become_communications_about_the_appointment() -> None:
    sent = chart.communication(
        chart.ChartEntry("m-1", chart.Direction.outbound, "pat-1", "sms", "Hello", NOW,
                         about=("Appointment/a-1",))
    )  # fmt: skip
    assert sent["sender"] == {"display": "Practice (Revisit)"}
    assert sent["recipient"] == [{"reference": "Patient/pat-1"}] and sent["sent"] == NOW.isoformat()
    assert sent["about"] == [{"reference": "Appointment/a-1"}]
    assert sent["identifier"] == [{"system": chart.MESSAGE_SYSTEM, "value": "m-1"}]
    assert sent["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    reply = chart.communication(
        chart.ChartEntry("m-2", chart.Direction.inbound, "pat-1", "sms", "1", NOW,
                         in_response_to="m-1")
    )  # fmt: skip
    assert reply["sender"] == {"reference": "Patient/pat-1"} and "received" in reply
    assert reply["inResponseTo"][0]["identifier"]["value"] == "m-1" and "about" not in reply


# --- the handoff --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "case"),
    [
        (HandoffReason.no_write_access, CaseType.booking_by_hand),
        (HandoffReason.ehr_refused, CaseType.booking_by_hand),
        (HandoffReason.patient_not_found, CaseType.patient_not_matched),
        (HandoffReason.patient_ambiguous, CaseType.patient_not_matched),
        (HandoffReason.no_identifier, CaseType.patient_not_matched),
    ],
)
def test_a_handoff_raises_the_case_of_its_kind_with_a_fixed_phrase(
    reason: HandoffReason, case: CaseType
) -> None:
    state = ConversationState("c:p", sequence_id="seq-1", service_line=ServiceLine.skin_check)
    raised = handoff_case(state, "reply-1", Channel.sms, reason)
    again = handoff_case(state, "reply-1", Channel.sms, reason)
    assert raised.case_type is case and raised.escalation_id == again.escalation_id
    assert raised.sequence_id == "seq-1" and raised.source_message_id == "reply-1"


def test_the_patient_is_told_a_person_will_confirm_in_their_language() -> None:
    values = {
        "slot_time": "Mon Mar 3, 9:00 AM",
        "service_name": "skin check",
        "practice_phone": "(512) 555-0100",
    }
    assert "a person will confirm it with you" in text_of(Reply.booking_by_staff, "en", values)
    assert "una persona se lo confirmará" in text_of(Reply.booking_by_staff, "es", values)
