"""The staff console in a real browser, against the real stack (`revisit dev`, one stack for the
module): a nurse signs in, takes a red-flag case from the queue and resolves it, answers a
patient's question from the inbox (the reply reaches the sandbox phone), reads in a patient's
story why they were messaged; axe-core finds no serious or critical violation on any page; a
nurse of one clinic sees and does nothing of another. Each page's screenshot goes to a
temporary folder, or to ``$REVISIT_SCREENSHOTS/console-*.png`` when that is set
(``REVISIT_SCREENSHOTS=docs/images`` refreshes the README's pictures).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import axe_violations, chromium, ensure_axe
from tests.e2e.conftest import DevStack, running_dev_stack
from tests.e2e.test_walking_skeleton import (
    CANCELLATION_GRACE,
    DAYTIME,
    cancellation,
    move_clock,
    patient,
    wait_until,
)

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
A, B = "clinic-demo", "clinic-east"
RED_FLAG = "The mole on my arm is bleeding and it really hurts"
QUESTION = "How much will the skin check cost me?"
REPLY = "A skin check is $150 and most plans cover it. Nurse Kim"


@dataclass
class Practice:
    stack: DevStack
    console: str
    axe: Path
    browser: Any
    images: Path  # where the screenshots go
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

    def shot(self, page: Any, name: str) -> None:
        self.images.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.images / f"console-{name}.png"))  # what a screen shows first

    def accessible(self, page: Any) -> None:
        bad = axe_violations(page, self.axe)
        assert bad == [], f"{page.url}: {bad}"


def _post(stack: DevStack, clinic: str, *events: dict[str, Any]) -> None:
    if clinic == A:
        headers, params = {"X-API-Key": stack.api_key}, {}
    else:  # another clinic's EHR: an admin token names the clinic
        headers, params = {"Authorization": f"Bearer {stack.admin_token}"}, {"clinic_id": clinic}
    response = httpx.post(
        f"{stack.urls['ingest']}/events",
        json={"events": list(events)},
        headers=headers,
        params=params,
    )
    assert response.status_code == 202, response.text


def _texted(stack: DevStack, clinic: str, patient_id: str) -> bool:
    response = httpx.get(
        f"{stack.urls['messenger']}/sandbox/messages",
        params={"patient_key": f"{clinic}:{patient_id}"},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    return bool(response.json()["messages"])


def _reply(stack: DevStack, clinic: str, patient_id: str, words: str) -> None:
    response = httpx.post(
        f"{stack.urls['messenger']}/sandbox/reply",
        json={"clinic_id": clinic, "patient_key": f"{clinic}:{patient_id}", "body": words},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    assert response.status_code == 201, response.text


def _red_flag_case(stack: DevStack, clinic: str, patient_id: str) -> str | None:
    response = httpx.get(
        f"{stack.urls['escalation']}/cases",
        params={"clinic_id": clinic},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    for case in response.json()["cases"]:
        if case["patient_key"] == f"{clinic}:{patient_id}" and case["case_type"] == "red_flag":
            return str(case["escalation_id"])
    return None


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Practice]:
    """Two clinics, each with a patient who texts a red flag; clinic A also has one who asks
    what the visit costs. Everything goes in through ingest and the sandbox phone."""
    axe = ensure_axe()
    # Written into the repository only when asked: a test run must leave the tree clean.
    wanted = os.environ.get("REVISIT_SCREENSHOTS")
    images = REPO / wanted if wanted else tmp_path_factory.mktemp("console-screenshots")
    with running_dev_stack(tmp_path_factory.mktemp("console-dev")) as stack:
        move_clock(stack, to=DAYTIME)  # a weekday morning, as the cancellations are dated
        people = [
            (A, "p-red", "+15555550201"),
            (A, "p-ask", "+15555550202"),
            (B, "p-east", "+15555550203"),
        ]
        for clinic, pid, phone in people:
            _post(stack, clinic, patient(pid, phone=phone), cancellation(pid, f"appt-{pid}"))
        move_clock(stack, by=CANCELLATION_GRACE)
        for clinic, pid, _ in people:
            texted = wait_until(lambda c=clinic, p=pid: _texted(stack, c, p), timeout=40)
            assert texted, f"no text to {clinic}:{pid}\n{stack.log_tail(30)}"
        _reply(stack, A, "p-red", RED_FLAG)
        _reply(stack, A, "p-ask", QUESTION)
        _reply(stack, B, "p-east", RED_FLAG)
        cases = {}
        for clinic, pid in ((A, "p-red"), (B, "p-east")):
            assert wait_until(lambda c=clinic, p=pid: _red_flag_case(stack, c, p) is not None)
            cases[clinic] = str(_red_flag_case(stack, clinic, pid))
        with chromium() as browser:
            yield Practice(stack, stack.urls["console"], axe, browser, images, cases)


def test_a_nurse_takes_a_red_flag_from_the_queue_and_resolves_it(practice: Practice) -> None:
    page = practice.page("nurse-1", A)
    case_id = practice.cases[A]
    first = page.locator("#queue-rows tr").first
    assert "Red flag" in first.inner_text() and "loud" in (first.get_attribute("class") or "")
    assert "red flag" in page.locator("#queue-status").inner_text()
    practice.shot(page, "queue")
    practice.accessible(page)
    first.get_by_role("link").click()
    page.wait_for_url(f"**/cases/{case_id}")
    assert RED_FLAG in page.locator(".conversation").inner_text()  # the patient's words beside
    practice.shot(page, "case")
    practice.accessible(page)
    page.get_by_role("button", name="Take this case").click()
    assert "paging has stopped" in page.locator(".notice").inner_text()
    page.get_by_label("Add a note").fill("Called her: photo sent, seen at 14:00 today.")
    page.get_by_role("button", name="Save the note").click()
    page.get_by_label("Outcome").select_option("booked")
    page.get_by_label("What was done").fill("Seen today at 14:00.")
    page.get_by_role("button", name="Resolve the case").click()
    assert "The case is resolved." in page.locator(".notice").inner_text()
    case = httpx.get(
        f"{practice.stack.urls['escalation']}/cases/{case_id}", headers=practice.admin()
    ).json()
    assert (case["state"], case["outcome"], case["resolved_by"]) == (
        "resolved",
        "booked",
        "nurse-1",
    )
    assert [a["actor"] for a in case["audit"] if a["action"] == "note_added"] == ["nurse-1"]
    # The pager's link (here the sandbox pager) opens this case in the console.
    pages = httpx.get(
        f"{practice.stack.urls['escalation']}/sandbox/pages",
        params={"escalation_id": case_id},
        headers=practice.admin(),
    ).json()["pages"]
    assert pages and pages[0]["case_url"] == f"{practice.console}/cases/{case_id}"


def test_a_nurse_answers_a_question_and_the_reply_reaches_the_patients_phone(
    practice: Practice,
) -> None:
    page = practice.page("nurse-2", A)
    page.get_by_role("link", name="Inbox").click()
    row = page.locator("table.inbox tbody tr", has_text=QUESTION)
    assert "Question" in row.inner_text()
    practice.shot(page, "inbox")
    practice.accessible(page)
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/inbox/[A-Za-z0-9_-]{20,}$"))
    assert "p-ask" not in page.url and A not in page.url  # an opaque reference, never the key
    practice.shot(page, "conversation")
    practice.accessible(page)
    page.get_by_label("Your reply").fill(REPLY)
    page.get_by_role("button", name="Send the reply").click()
    assert "on its way" in page.locator(".notice").inner_text()

    def arrived() -> bool:
        feed = httpx.get(
            f"{practice.stack.urls['messenger']}/sandbox/feed",
            params={"clinic_id": A},
            headers=practice.admin(),
        ).json()["messages"]
        return any(
            m["body"] == REPLY and m["patient_key"] == f"{A}:p-ask" and m["direction"] == "outbound"
            for m in feed
        )

    assert wait_until(arrived)
    page.reload()
    assert "nurse-2 (staff)" in page.locator(".conversation").inner_text()


def test_a_patients_story_says_why_they_were_messaged(practice: Practice) -> None:
    page = practice.page("nurse-3", A)
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name="Handled lately").click()
    page.locator("table tbody tr").first.get_by_role("link").click()
    page.get_by_role("link", name="Open the patient's story").first.click()
    page.wait_for_url(re.compile(r"/patients/[A-Za-z0-9_-]{20,}$"))
    why = page.locator("#why-title").locator("xpath=..").inner_text()
    assert "Cancelled, not rescheduled" in why and "Why:" in why
    assert "appointment appt-p-ask" in why  # the record the need came from
    assert "Reply STOP" in why  # the first step's words, as sent
    practice.shot(page, "story")
    practice.accessible(page)


def test_every_other_page_is_accessible(practice: Practice) -> None:
    page = practice.page("admin-1", A, role="admin")
    for name, path in (
        ("segments", "/segments"),
        ("segment-edit", "/segments/cancelled_not_rescheduled"),
        ("words", "/words"),
        ("outcomes", "/outcomes"),
        ("pilots", "/pilots"),
    ):
        page.goto(f"{practice.console}{path}?clinic={A}")
        assert page.locator("h1").count() == 1, path
        practice.shot(page, name)
        practice.accessible(page)
    signed_out = practice.browser.new_context(bypass_csp=True).new_page()
    signed_out.goto(f"{practice.console}/sign-in")
    practice.shot(signed_out, "sign-in")
    practice.accessible(signed_out)


def test_a_nurse_of_one_clinic_sees_and_does_nothing_of_another(practice: Practice) -> None:
    east = practice.cases[B]
    theirs = practice.page("nurse-east", B)
    theirs.goto(f"{practice.console}/cases/{east}")
    story_link = theirs.get_by_role("link", name="Open the patient's story").get_attribute("href")
    assert story_link is not None
    ours = practice.page("nurse-1", A)
    ours.goto(f"{practice.console}/escalations?clinic={B}")
    assert east not in ours.content()  # the queue stays on the nurse's own clinic
    ours.goto(f"{practice.console}/cases/{east}")
    assert ours.locator("h1").inner_text() == "Not found" and RED_FLAG not in ours.content()
    ours.goto(f"{practice.console}{story_link}")
    assert ours.locator("h1").inner_text() == "Not found"
    ours.goto(f"{practice.console}/escalations")
    token = ours.locator("input[name=csrf]").first.get_attribute("value")
    status = ours.evaluate(
        "async ([url, token]) => (await fetch(url, {method: 'POST', body: new URLSearchParams("
        "{csrf: token}), redirect: 'manual'})).status",
        [f"/cases/{east}/acknowledge", token],
    )
    assert status == 404
    case = httpx.get(
        f"{practice.stack.urls['escalation']}/cases/{east}", headers=practice.admin()
    ).json()
    assert case["acknowledged_by"] is None
