"""The cross-clinic (BOLA) matrix: clinic A's admin against every route of every service that
names an object in its path, aimed at clinic B's objects. The routes come from each service's
OpenAPI, so a new route is in the matrix the day it is added.

Expected: 404 for an object of another clinic (403 where the object is the clinic itself), for
a read and for a change, and never anything of clinic B in the answer.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.security.conftest import SERVICES, Stack, token

pytestmark = pytest.mark.integration
METHODS = ("get", "post", "put", "patch", "delete")
PHONE = "+15555550123"

# Routes that name no clinic's object: the platform's own (an admin of every clinic only), the
# public booking link (a random token), state law, and the FHIR write (it writes into the
# credential's own clinic whatever id it names).
NOT_CLINIC_OBJECTS = {
    "/admin/dlq/{letter_id}",
    "/admin/timers/{timer_id}/rearm",
    "/b/{token}",
    "/quiet-hours/states/{state_code}",
    "/fhir/r4/{kind}/{resource_id}",
    "/segments/{segment}/preview",
}
# Parameters that pick a part of an object named by another parameter, not an object.
PARTS = {"block", "action", "kind"}

# Object routes that still answer 403 (which tells the caller the object exists in another
# clinic) where 404 is expected; scoping of out-of-clinic objects is changing to 404.
ANSWERS_403 = {
    "DELETE /workflows/{workflow_key}",
    "GET /clinics/{clinic_id}/rotations/{rotation_id}/on-call",
    "GET /inbox/conversations/{patient_key}",
    "GET /patients/{patient_key}/cases",
    "GET /patients/{patient_key}/consent",
    "GET /patients/{patient_key}/contacts",
    "GET /patients/{patient_key}/conversation",
    "GET /patients/{patient_key}/journey",
    "GET /patients/{patient_key}/outreach",
    "GET /patients/{patient_key}/outreach/actions",
    "GET /patients/{patient_key}/segments",
    "GET /workflows/{workflow_key}",
    "POST /inbox/conversations/{patient_key}/assign",
    "POST /inbox/conversations/{patient_key}/handled",
    "POST /inbox/conversations/{patient_key}/replies",
    "POST /patients/{patient_key}/outreach/{action}",
    "POST /patients/{patient_key}/pause",
    "POST /patients/{patient_key}/resume",
    "POST /patients/{patient_key}/stop",
    "PUT /patients/{patient_key}/consent",
}
# Object routes whose clinic-B object this matrix does not create yet (cases, pilots,
# sequences, replies, notifiers, providers, overrides, waitlist entries, prices and a clinic's
# own templates need a
# longer story to exist; the shipped templates are no clinic's). A route
# with a parameter of a new kind fails the test until it is seeded or listed here.
NOT_SEEDED = {
    "escalation DELETE /clinics/{clinic_id}/rotations/{rotation_id}/overrides/{override_id}",
    "escalation GET /cases/{escalation_id}",
    "escalation GET /cases/{escalation_id}/audit",
    "escalation GET /cases/{escalation_id}/notes",
    "escalation POST /cases/{escalation_id}/acknowledge",
    "escalation POST /cases/{escalation_id}/notes",
    "escalation POST /cases/{escalation_id}/reassign",
    "escalation POST /cases/{escalation_id}/resolve",
    "escalation PUT /clinics/{clinic_id}/notifiers/{notifier_id}",
    "messenger GET /replies/{message_id}",
    "messenger GET /templates/{template_id}",
    "messenger PATCH /templates/{template_id}",
    "messenger DELETE /templates/{template_id}",
    "messenger POST /templates/{template_id}/approve",
    "messenger POST /templates/{template_id}/retire",
    "messenger PUT /practices/{clinic_id}/providers/{provider_id}",
    "messenger PUT /practices/{clinic_id}/prices/{service_line}",
    "messenger DELETE /waitlist/{clinic_id}/{entry_id}",
    "metrics GET /reports/pilots/{pilot_id}",
    "sequencer DELETE /pilots/{pilot_id}",
    "sequencer GET /pilots/{pilot_id}",
    "sequencer GET /pilots/{pilot_id}/preview",
    "sequencer GET /pilots/{pilot_id}/review",
    "sequencer GET /sequences/{sequence_id}",
    "sequencer PATCH /pilots/{pilot_id}",
    "sequencer POST /pilots/{pilot_id}/close",
    "sequencer POST /pilots/{pilot_id}/reviews",
    "sequencer POST /pilots/{pilot_id}/start",
}


def object_routes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if "{" in path and path not in NOT_CLINIC_OBJECTS
        for method in item
        if method in METHODS
    ]


async def seed_clinic_b(stack: Stack) -> dict[str, Any]:
    """Clinic B with a patient the EHR sent (contacts reach the messenger, journeys the
    segmenter)."""
    from services.ingest.keys import create_api_key

    clinic = f"clinic-b-{uuid.uuid4().hex[:8]}"
    key = await create_api_key(stack.dsn, clinic, "bola")
    patient = f"pb-{uuid.uuid4().hex[:8]}"
    event = {
        "type": "PatientUpserted",
        "patient_id": patient,
        "payload": {
            "source": {
                "system": "json",
                "record_id": patient,
                "source_updated_at": "2026-11-20T10:00:00Z",
            },
            "given_name": "Bea",
            "preferred_language": "en",
            "time_zone": "America/Chicago",
            "contacts": [{"kind": "phone", "value": PHONE, "use": "mobile", "rank": 1}],
        },
    }
    async with httpx.AsyncClient(base_url=stack.urls["ingest"], timeout=30) as ingest:
        answer = await ingest.post("/events", json={"events": [event]}, headers={"X-API-Key": key})
        assert answer.status_code == 202, answer.text
    patient_key = f"{clinic}:{patient}"
    own = token("admin", [clinic], subject="admin-b")
    async with httpx.AsyncClient(base_url=stack.urls["messenger"], timeout=30) as messenger:
        deadline = time.monotonic() + 120  # a loaded machine joins consumer groups slowly
        while time.monotonic() < deadline:
            contacts = await messenger.get(f"/patients/{patient_key}/contacts", headers=own)
            if contacts.status_code == 200 and PHONE in contacts.text:
                break
            await asyncio.sleep(0.3)
        else:
            raise AssertionError("clinic B's patient never reached the messenger")
    return {"clinic_id": clinic, "patient_key": patient_key, "patient": patient, "own": own}


def discover(client: httpx.Client, path: str, param: str, b: dict[str, Any]) -> str | None:
    """An id of clinic B for ``param``, from the collection the route sits under."""
    prefix = path.split("{" + param + "}")[0].rstrip("/")
    prefix = prefix.replace("{clinic_id}", b["clinic_id"]).replace(
        "{patient_key}", b["patient_key"]
    )
    if "{" in prefix or not prefix:
        return None
    answer = client.get(prefix, params={"clinic_id": b["clinic_id"]}, headers=b["own"])
    if answer.status_code != 200:
        return None
    body = answer.json()
    items = (
        body
        if isinstance(body, list)
        else next((v for v in body.values() if isinstance(v, list)), [])
        if isinstance(body, dict)
        else []
    )
    singular = param.removesuffix("_id")
    for item in items:
        # Only B's own objects (a shared default, e.g. a shipped template, is no one's).
        if isinstance(item, dict) and item.get("clinic_id", b["clinic_id"]) == b["clinic_id"]:
            for name in (param, "id", f"{singular}_id", "key"):
                if item.get(name) not in (None, ""):
                    return str(item[name])
    return None


def part_value(spec: dict[str, Any], path: str, param: str) -> str:
    """A valid value of a part parameter (the first of its enum), so the route is reached."""
    for operation in spec["paths"][path].values():
        for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
            if parameter.get("name") == param:
                schema = parameter.get("schema", {})
                if "$ref" in schema:
                    schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
                if schema.get("enum"):
                    return str(schema["enum"][0])
    return "x"


@pytest.fixture(scope="module")
def matrix(stack: Stack) -> dict[str, Any]:
    started = time.monotonic()
    b = asyncio.run(seed_clinic_b(stack))
    print(f"bola: clinic B seeded in {time.monotonic() - started:.1f} s")
    clinic_a = f"clinic-a-{uuid.uuid4().hex[:8]}"
    caller = token("admin", [clinic_a], subject="admin-a")
    results: dict[str, Any] = {"wrong": [], "forbidden": set(), "unseeded": set(), "checked": 0}
    secrets = [b["patient"], PHONE, "Bea"]
    for service in SERVICES:
        with stack.client(service) as client:
            spec = client.get("/openapi.json").json()
            for method, path in object_routes(spec):
                params = re.findall(r"{(\w+)}", path)
                values: dict[str, str] = {}
                for param in params:
                    if param in PARTS:
                        values[param] = part_value(spec, path, param)
                    elif param in ("clinic_id", "patient_key"):
                        values[param] = b[param]
                    elif (found := discover(client, path, param, b)) is not None:
                        values[param] = found
                if set(values) != set(params):
                    results["unseeded"].add(f"{service} {method} {path}")
                    continue
                url = path
                for name, value in values.items():
                    url = url.replace("{" + name + "}", value)
                body = None if method in ("GET", "DELETE") else {}
                answer = client.request(
                    method, url, headers=caller, json=body, params={"clinic_id": b["clinic_id"]}
                )
                results["checked"] += 1
                route = f"{method} {path}"
                leaked = [s for s in secrets if s in answer.text]
                # The clinic itself (its settings, parameters, practice): 403 names no object.
                clinic_route = set(params) <= {"clinic_id", *PARTS}
                expected = {403, 404} if clinic_route else {404}
                if leaked or answer.status_code < 400:
                    results["wrong"].append(f"{service} {route}: {answer.status_code} {leaked}")
                elif answer.status_code == 403 and not clinic_route:
                    results["forbidden"].add(route)
                elif answer.status_code not in expected and not (
                    body is not None and answer.status_code == 422
                ):
                    results["wrong"].append(f"{service} {route}: {answer.status_code}")
    print(f"bola: {results['checked']} calls in {time.monotonic() - started:.1f} s")
    return results


def test_clinic_a_never_reaches_or_sees_an_object_of_clinic_b(matrix: dict[str, Any]) -> None:
    assert matrix["checked"] >= 30, matrix
    assert not matrix["wrong"], "\n".join(matrix["wrong"])
    assert matrix["forbidden"] <= ANSWERS_403, sorted(matrix["forbidden"] - ANSWERS_403)
    assert matrix["unseeded"] <= NOT_SEEDED, sorted(matrix["unseeded"] - NOT_SEEDED)


@pytest.mark.xfail(
    strict=True,
    reason="these object routes answer 403 (the object exists elsewhere) instead of 404: "
    + ", ".join(sorted(ANSWERS_403)),
)
def test_an_object_of_another_clinic_is_not_found(matrix: dict[str, Any]) -> None:
    assert not matrix["forbidden"], sorted(matrix["forbidden"])
