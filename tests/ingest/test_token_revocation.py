"""Revoking a staff token by its jti: the admin API (served by every service) and the CLI store
it in the platform schema, and the token is refused at once by the service that revoked it (and
by the others within the revocation cache's seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import jwt
import pytest

from shared.auth import issue_staff_token
from tests.ingest.conftest import JWT_SECRET, Ingest

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(role: str = "admin", clinics: list[str] | str = "*") -> str:
    return issue_staff_token(
        JWT_SECRET,
        subject="admin-9",
        role=role,
        clinics=clinics,
        ttl=timedelta(hours=1),  # type: ignore[arg-type]
    )


async def test_a_revoked_token_is_refused_on_every_route(ingest: Ingest) -> None:
    admin, victim = token(), token("admin", ["c-revoked"])
    listing = {"clinic_id": "c-revoked"}
    assert (
        await ingest.client.get("/admin/api-keys", headers=bearer(victim), params=listing)
    ).status_code == 200
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    revoked = await ingest.client.post(
        "/admin/tokens/revocations",
        json={"token": victim, "reason": "laptop lost"},
        headers=bearer(admin),
    )
    assert revoked.status_code == 201, revoked.text
    assert revoked.json()["jti"] == jti
    refused = await ingest.client.get("/admin/api-keys", headers=bearer(victim), params=listing)
    assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"
    found = await ingest.client.get("/admin/tokens/revocations", headers=bearer(admin))
    [row] = [r for r in found.json()["revocations"] if r["jti"] == jti]
    assert row["revoked_by"] == "admin-9" and row["reason"] == "laptop lost"


async def test_only_an_admin_of_every_clinic_revokes(ingest: Ingest) -> None:
    for who in (token("operator", ["c-1"]), token("admin", ["c-1"])):
        answer = await ingest.client.post(
            "/admin/tokens/revocations", json={"jti": "x" * 32}, headers=bearer(who)
        )
        assert answer.status_code == 403


async def test_the_cli_revokes_by_jti(ingest: Ingest) -> None:
    victim = token("viewer", ["c-cli"])
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    env = {**os.environ, "DATABASE_URL": str(ingest.runtime.settings.db.database_url)}
    done = subprocess.run(
        [sys.executable, "-m", "revisit.cli", "token-revoke", "--jti", jti, "--reason", "left"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"revoked {jti}" in done.stdout
    ingest.app.state.revoked_tokens.forget()  # the cache's few seconds, skipped
    answer = await ingest.client.get(
        "/admin/api-keys", headers=bearer(victim), params={"clinic_id": "c-cli"}
    )
    assert answer.status_code == 401 and answer.json()["detail"] == "token revoked"
