"""The independent FHIR server (Medplum's router and in-memory repository, ``fhirserver/``),
started by the tests as a Node process on a free port, and a few helpers to seed it.

Node and npm come from Debian when missing (as root, like the Chromium tests); the npm packages
are installed from ``fhirserver/package-lock.json`` into ``fhirserver/node_modules`` (ignored by
git) the first time. The process is ended by its own id when the fixture ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.debian import ensure_package

HERE = Path(__file__).resolve().parent / "fhirserver"
NPM_TIMEOUT_S = 600


def install() -> str:
    """The node binary, with the server's packages installed."""
    node = ensure_package("nodejs", ["node", "nodejs"])
    if not (HERE / "node_modules" / "@medplum" / "fhir-router").is_dir():
        npm = shutil.which("npm") or ensure_package("npm", ["npm"])
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            timeout=NPM_TIMEOUT_S,
        )
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"npm ci in tests/ehr/fhirserver failed: {tail}")
    return node


class FhirServer:
    def __init__(self, *, introspect: str | None = None, token_url: str | None = None) -> None:
        self.introspect, self.token_url = introspect, token_url
        self.process: asyncio.subprocess.Process | None = None
        self.origin = ""

    @property
    def base(self) -> str:  # read and write, bearer tokens checked when introspection is on
        return f"{self.origin}/fhir"

    @property
    def readonly(self) -> str:  # an EHR that takes no writes
        return f"{self.origin}/readonly/fhir"

    @property
    def admin(self) -> str:  # no auth: for seeding
        return f"{self.origin}/admin/fhir"

    async def start(self) -> None:
        node = install()
        argv = [node, str(HERE / "server.mjs"), "--port", "0"]
        if self.introspect:
            argv += ["--introspect", self.introspect]
        if self.token_url:
            argv += ["--token-url", self.token_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.process = await asyncio.create_subprocess_exec(
            *argv, cwd=HERE, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=120)
        if not line.startswith(b"listening "):
            err = await self.process.stderr.read() if self.process.stderr else b""
            raise RuntimeError(f"the FHIR server did not start: {err.decode()[-1500:]}")
        self.origin = f"http://127.0.0.1:{int(line.split()[1])}"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await asyncio.wait_for(self.process.wait(), timeout=5)
            if self.process.returncode is None:
                self.process.kill()

    async def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{self.admin}/{resource['resourceType']}", json=resource)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    async def search(self, kind: str, **params: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{self.admin}/{kind}", params=params)
        assert answer.status_code == 200, answer.text
        return [e["resource"] for e in answer.json().get("entry") or []]

    async def read(self, kind: str, resource_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{self.admin}/{kind}/{resource_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


PRACTICE_CODES = "http://practice.example/appointment-type"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7777.1"


async def seed_practice(
    server: FhirServer, *, slots: int = 4, service: str = "FBSE"
) -> dict[str, Any]:
    """A practitioner with a schedule at a location and free slots of one service type (plus
    one busy slot and one slot of another service), every id fresh so tests never collide."""
    tag = uuid.uuid4().hex[:8]
    practitioner = await server.create(
        {"resourceType": "Practitioner", "name": [{"family": f"Derm{tag}"}]}
    )
    location = await server.create({"resourceType": "Location", "name": f"Clinic {tag}"})
    coding = {"system": PRACTICE_CODES, "code": service}
    schedule = await server.create(
        {
            "resourceType": "Schedule",
            "active": True,
            "actor": [
                {"reference": f"Practitioner/{practitioner['id']}"},
                {"reference": f"Location/{location['id']}"},
            ],
            "serviceType": [{"coding": [coding]}],
        }
    )
    made = []
    for i in range(slots + 2):
        status = "busy" if i == 0 else "free"
        code = coding if i != 1 else {"system": PRACTICE_CODES, "code": "OTHER"}
        made.append(
            await server.create(
                {
                    "resourceType": "Slot",
                    "schedule": {"reference": f"Schedule/{schedule['id']}"},
                    "serviceType": [{"coding": [code]}],
                    "status": status,
                    "start": f"2031-03-0{3 + i // 4}T{14 + i % 4}:00:00Z",
                    "end": f"2031-03-0{3 + i // 4}T{14 + i % 4}:30:00Z",
                }
            )
        )
    return {
        "practitioner": practitioner["id"],
        "location": location["id"],
        "schedule": schedule["id"],
        "busy": made[0]["id"],
        "other_service": made[1]["id"],
        "free": [s["id"] for s in made[2:]],
    }


async def seed_patient(server: FhirServer, mrn: str, *, active: bool = True) -> str:
    patient = await server.create(
        {
            "resourceType": "Patient",
            "active": active,
            "identifier": [
                {
                    "system": MRN_SYSTEM,
                    "value": mrn,
                    "type": {"coding": [{"code": "MR"}]},
                }
            ],
        }
    )
    return str(patient["id"])
