"""Clinic set-up through the API: rotations and overrides, notifiers, routing rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from services.escalation.notifiers.config import secret_env_prefix
from tests.escalation.service_harness import T0, Service, running_service


@pytest.fixture(scope="module")
async def service(escalation_dsn: str, kafka: Any) -> AsyncIterator[Service]:
    """The API and timers only: set-up calls need no consumer."""
    async with running_service(escalation_dsn, kafka.bootstrap, consume=False) as running:
        yield running


async def test_a_new_clinic_starts_with_the_default_rotations_and_rules(service: Service) -> None:
    viewer = service.auth("desk-1", "viewer")
    r = await service.client.get(f"/clinics/{service.clinic}/rotations", headers=viewer)
    assert r.status_code == 200
    assert {x["rotation_id"] for x in r.json()["rotations"]} == {
        "dermatologist-on-call",
        "nurse-line",
        "practice-manager",
        "front-desk",
    }
    r = await service.client.get(f"/clinics/{service.clinic}/routing-rules", headers=viewer)
    assert r.json()["rules"][0]["rule_id"] == "red-flag-in-hours"
    r = await service.client.get(f"/clinics/{service.clinic}/settings", headers=viewer)
    assert r.json()["ack_minutes"] == {"urgent": 5, "high": 15, "normal": 60, "low": 240}
    assert (r.json()["opens"], r.json()["closes"]) == ("08:00", "18:00")


async def test_only_an_admin_changes_a_rotation_and_it_is_validated(service: Service) -> None:
    body = {
        "name": "Dermatologists",
        "time_zone": "America/New_York",
        "members": [{"responder_id": "dr-a"}, {"responder_id": "dr-b"}],
    }
    url = f"/clinics/{service.clinic}/rotations/dermatologist-on-call"
    assert (
        await service.client.put(url, json=body, headers=service.auth("dr-a"))
    ).status_code == 403
    admin = service.auth("admin-1", "admin")
    bad_zone = {**body, "time_zone": "Mars/Olympus"}
    assert (await service.client.put(url, json=bad_zone, headers=admin)).status_code == 422
    twice = {**body, "members": [{"responder_id": "dr-a"}, {"responder_id": "dr-a"}]}
    assert (await service.client.put(url, json=twice, headers=admin)).status_code == 422
    loop = {**body, "fallback_rotation_id": "dermatologist-on-call"}
    assert (await service.client.put(url, json=loop, headers=admin)).status_code == 422
    r = await service.client.put(url, json=body, headers=admin)
    assert r.status_code == 200 and [m["responder_id"] for m in r.json()["members"]] == [
        "dr-a",
        "dr-b",
    ]


async def test_overrides_change_who_is_on_call_and_are_audited(service: Service) -> None:
    start, end = T0 + timedelta(minutes=20), T0 + timedelta(hours=10)
    r = await service.client.post(
        f"/clinics/{service.clinic}/rotations/dermatologist-on-call/overrides",
        headers=service.auth("dr-a"),
        json={"responder_id": "dr-c", "starts_at": start.isoformat(), "ends_at": end.isoformat()},
    )
    assert r.status_code == 201, r.text
    r = await service.client.get(
        f"/clinics/{service.clinic}/on-call",
        headers=service.auth("dr-a"),
        params={"at": (T0 + timedelta(hours=1)).isoformat()},
    )
    assert r.json()["on_call"]["dermatologist-on-call"]["responder_id"] == "dr-c"
    assert r.json()["on_call"]["dermatologist-on-call"]["source"] == "override"
    r = await service.client.get(f"/clinics/{service.clinic}/audit", headers=service.auth("dr-a"))
    actions = [(a["actor"], a["action"]) for a in r.json()["audit"]]
    assert ("dr-a", "override_added") in actions and ("admin-1", "rotation_saved") in actions


async def test_notifier_secrets_are_write_only_and_must_name_a_notifier_variable(
    service: Service,
) -> None:
    admin = service.auth("admin-1", "admin")
    url = f"/clinics/{service.clinic}/notifiers/pagerduty-main"
    r = await service.client.put(
        url, headers=admin, json={"kind": "pagerduty", "secret": "synthetic-pd-key-42"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["secret_set"] is True
    listed = await service.client.get(f"/clinics/{service.clinic}/notifiers", headers=admin)
    assert "synthetic-pd-key-42" not in listed.text
    r = await service.client.put(
        url, headers=admin, json={"kind": "pagerduty", "secret_env": "REVISIT_JWT_SECRET"}
    )
    assert r.status_code == 422
    r = await service.client.put(
        url,
        headers=admin,
        json={"kind": "webhook", "settings": {"url": "ftp://nowhere"}, "secret": "s"},
    )
    assert r.status_code == 422 and "settings.url" in r.text and "ftp://" not in r.text
    operator = await service.client.get(
        f"/clinics/{service.clinic}/notifiers", headers=service.auth("x")
    )
    assert operator.status_code == 403


async def test_routing_rules_can_be_previewed_and_replaced(service: Service) -> None:
    admin = service.auth("admin-1", "admin")
    preview = {"case_type": "clinical_question", "severity": "normal"}
    r = await service.client.post(
        f"/clinics/{service.clinic}/routing-rules/preview", json=preview, headers=admin
    )
    assert (r.json()["rotation_id"], r.json()["page_at"]) == ("nurse-line", "2026-03-04T13:00:00Z")
    rules = {
        "rules": [{"rule_id": "all-to-derm", "priority": 1, "rotation_id": "dermatologist-on-call"}]
    }
    assert (
        await service.client.put(
            f"/clinics/{service.clinic}/routing-rules", json=rules, headers=admin
        )
    ).status_code == 200
    r = await service.client.post(
        f"/clinics/{service.clinic}/routing-rules/preview", json=preview, headers=admin
    )
    assert r.json()["rotation_id"] == "dermatologist-on-call"
    bad = {"rules": [{"rule_id": "x", "priority": 1, "rotation_id": "nowhere"}]}
    r = await service.client.put(
        f"/clinics/{service.clinic}/routing-rules", json=bad, headers=admin
    )
    assert r.status_code == 422


async def test_a_notifier_secret_is_read_only_from_the_clinic_own_namespace(
    service: Service,
) -> None:
    admin = service.auth("admin-1", "admin")
    url = f"/clinics/{service.clinic}/notifiers/pd-ns"
    mine = secret_env_prefix(service.clinic)
    theirs = secret_env_prefix(service.other)
    assert mine and theirs and mine != theirs
    for name in ("REVISIT_JWT_SECRET", "REVISIT_NOTIFIER_PD", f"{mine}", f"{theirs}PD"):
        r = await service.client.put(
            url, headers=admin, json={"kind": "pagerduty", "secret_env": name}
        )
        assert r.status_code == 422, name
    assert mine in r.text and theirs not in r.text  # says which names are the clinic's
    r = await service.client.put(
        url, headers=admin, json={"kind": "pagerduty", "secret_env": f"{mine}PD"}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data",  # a cloud's metadata endpoint
        "http://10.0.0.7:5432/x",  # the services' own network
        "http://[::1]:8001/admin",  # loopback, IPv6
        "http://[::ffff:192.168.0.1]/x",  # private, IPv4-mapped
        "http://user:pw@hooks.example.org/x",  # credentials before the host
    ],
)
async def test_a_notifier_cannot_point_at_private_loopback_or_link_local_addresses(
    service: Service, target: str
) -> None:
    admin = service.auth("admin-1", "admin")
    base = f"/clinics/{service.clinic}/notifiers"
    webhook = {"kind": "webhook", "settings": {"url": target}, "secret": "s" * 20}
    r = await service.client.put(f"{base}/wh-ssrf", headers=admin, json=webhook)
    assert r.status_code == 422 and r.json()["detail"].startswith("settings: "), r.text
    slack = {"kind": "slack", "secret": target}
    r = await service.client.put(f"{base}/slack-ssrf", headers=admin, json=slack)
    assert r.status_code == 422 and "/meta-data" not in r.text and "pw@" not in r.text
    mail = {"kind": "email", "settings": {"host": "10.0.0.9", "from_address": "p@clinic.example"}}
    r = await service.client.put(f"{base}/mail-ssrf", headers=admin, json=mail)
    assert r.status_code == 422


async def test_the_allowed_network_is_what_the_service_was_configured_with(
    service: Service,
) -> None:
    # this harness allows 127.0.0.1/32 (its recording servers), and nothing else private
    admin = service.auth("admin-1", "admin")
    base = f"/clinics/{service.clinic}/notifiers"
    ok = {"kind": "webhook", "settings": {"url": "http://127.0.0.1:9/hook"}, "secret": "s" * 20}
    assert (await service.client.put(f"{base}/wh-local", headers=admin, json=ok)).status_code == 200
    near = {**ok, "settings": {"url": "http://127.0.0.2:9/hook"}}
    assert (
        await service.client.put(f"{base}/wh-near", headers=admin, json=near)
    ).status_code == 422
