"""The console's end-to-end tests' practice: the stack, the console's address, axe-core and a
browser; signing in through the dev sign-in page; screenshots; and posting to the stack as the
EHR and the patients' phones do.

Screenshots go to a temporary folder, or to ``$REVISIT_SCREENSHOTS`` (relative to the repository,
or absolute) when that is set: ``REVISIT_SCREENSHOTS=docs/images`` refreshes the pictures in the
README and docs/console.md. A plain test run leaves the repository as it was."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import issue_staff_token
from tests.e2e.browser import axe_violations
from tests.e2e.conftest import DevStack

REPO = Path(__file__).resolve().parents[2]
A, B = "clinic-demo", "clinic-east"


@dataclass
class Practice:
    stack: DevStack
    console: str
    axe: Path
    browser: Any
    images: Path  # where the screenshots go: screenshot_folder()
    cases: dict[str, str] = field(default_factory=dict)  # name -> escalation id

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.admin_token}"}

    def page(self, subject: str, clinics: str, role: str = "operator") -> Any:
        """A new browser context (its own cookies), signed in through the dev sign-in page."""
        context = self.browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.goto(f"{self.console}/sign-in")
        page.get_by_label("Staff id").fill(subject)
        page.get_by_label("Role").select_option(role)
        page.get_by_label("Clinics").fill(clinics)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/escalations"))
        return page

    def shot(self, page: Any, name: str, part: Any = None) -> None:
        """What a screen shows first, or the whole of one ``part`` of the page."""
        self.images.mkdir(parents=True, exist_ok=True)
        (part or page).screenshot(path=str(self.images / f"console-{name}.png"))

    def accessible(self, page: Any) -> None:
        bad = axe_violations(page, self.axe)
        assert bad == [], f"{page.url}: {bad}"


def screenshot_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("REVISIT_SCREENSHOTS")
    return REPO / wanted if wanted else tmp_path_factory.mktemp("console-screenshots")


def post_events(stack: DevStack, clinic: str, *events: dict[str, Any]) -> None:
    if clinic == A:
        headers, params = {"X-API-Key": stack.api_key}, {}
    else:  # another clinic's EHR: a token given the ehr_writer role for it names the clinic
        writer = issue_staff_token(
            stack.jwt_secret,
            subject="ehr-feed",
            role="ehr_writer",
            clinics=[clinic],
            ttl=timedelta(minutes=10),
        )
        headers, params = {"Authorization": f"Bearer {writer}"}, {"clinic_id": clinic}
    response = httpx.post(
        f"{stack.urls['ingest']}/events",
        json={"events": list(events)},
        headers=headers,
        params=params,
    )
    assert response.status_code == 202, response.text


def texted(stack: DevStack, clinic: str, patient_id: str) -> bool:
    response = httpx.get(
        f"{stack.urls['messenger']}/sandbox/messages",
        params={"patient_key": f"{clinic}:{patient_id}"},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    return bool(response.json()["messages"])


def reply_as_patient(stack: DevStack, clinic: str, patient_id: str, words: str) -> None:
    response = httpx.post(
        f"{stack.urls['messenger']}/sandbox/reply",
        json={"clinic_id": clinic, "patient_key": f"{clinic}:{patient_id}", "body": words},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    assert response.status_code == 201, response.text


def red_flag_case(stack: DevStack, clinic: str, patient_id: str) -> str | None:
    response = httpx.get(
        f"{stack.urls['escalation']}/cases",
        params={"clinic_id": clinic},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    for case in response.json()["cases"]:
        if case["patient_key"] == f"{clinic}:{patient_id}" and case["case_type"] == "red_flag":
            return str(case["escalation_id"])
    return None
