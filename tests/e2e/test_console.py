"""The staff console in a real browser, against the real stack (`revisit dev`, one stack for the
module): a nurse signs in, takes a red-flag case from the queue and resolves it, answers a
patient's question from the inbox (the reply reaches the sandbox phone), reads in a patient's
story why they were messaged; an admin runs a small pilot from its definition to its report,
three weeks passing on the stack's controlled clock; axe-core finds no serious or critical
violation on any page; a nurse of one clinic sees and does nothing of another. Each page's
screenshot goes to a temporary folder, or where ``REVISIT_SCREENSHOTS`` says
(tests/e2e/console_practice.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.e2e import console_pilot as pilot
from tests.e2e.browser import chromium, ensure_axe
from tests.e2e.conftest import running_dev_stack
from tests.e2e.console_practice import (
    A,
    B,
    Practice,
    post_events,
    red_flag_case,
    reply_as_patient,
    screenshot_folder,
    texted,
)
from tests.e2e.test_walking_skeleton import (
    CANCELLATION_GRACE,
    DAYTIME,
    cancellation,
    move_clock,
    patient,
    wait_until,
)

pytestmark = pytest.mark.e2e
RED_FLAG = "The mole on my arm is bleeding and it really hurts"
QUESTION = "How much will the skin check cost me?"
REPLY = "A skin check is $150 and most plans cover it. Nurse Kim"
COST_OBJECTION = "No thanks, it's too expensive for me"
LATER = "Busy with work until after the holidays"


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Practice]:
    """Two clinics, each with a patient who texts a red flag; clinic A also has one who asks
    what the visit costs. Everything goes in through ingest and the sandbox phone."""
    axe = ensure_axe()
    with running_dev_stack(tmp_path_factory.mktemp("console-dev")) as stack:
        move_clock(stack, to=DAYTIME)  # a weekday morning, as the cancellations are dated
        people = [
            (A, "p-red", "+15555550201"),
            (A, "p-ask", "+15555550202"),
            (B, "p-east", "+15555550203"),
        ]
        for clinic, pid, phone in people:
            post_events(stack, clinic, patient(pid, phone=phone), cancellation(pid, f"appt-{pid}"))
        move_clock(stack, by=CANCELLATION_GRACE)
        for clinic, pid, _ in people:
            sent = wait_until(lambda c=clinic, p=pid: texted(stack, c, p), timeout=40)
            assert sent, f"no text to {clinic}:{pid}\n{stack.log_tail(30)}"
        reply_as_patient(stack, A, "p-red", RED_FLAG)
        reply_as_patient(stack, A, "p-ask", QUESTION)
        reply_as_patient(stack, B, "p-east", RED_FLAG)
        cases = {}
        for clinic, pid in ((A, "p-red"), (B, "p-east")):
            assert wait_until(lambda c=clinic, p=pid: red_flag_case(stack, c, p) is not None)
            cases[clinic] = str(red_flag_case(stack, clinic, pid))
        with chromium() as browser:
            images = screenshot_folder(tmp_path_factory)
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


def _decide(page: Any, decision: str, note: str) -> None:
    """Confirm the week's whole checklist and record ``decision`` with ``note``."""
    for box in page.locator("fieldset", has_text="Checklist").get_by_role("checkbox").all():
        box.check()
    page.get_by_label(decision).check()
    page.get_by_label("Note about the cohort as a whole").fill(note)
    page.get_by_role("button", name="Record the decision").click()
    assert "The decision is recorded." in page.locator(".notice[role=status]").inner_text()


def test_an_admin_runs_a_small_pilot_from_definition_to_report(practice: Practice) -> None:
    """Last in the module: it moves the stack's clock three weeks on."""
    stack, console = practice.stack, practice.console
    page = practice.page("admin-2", A, role="admin")
    page.get_by_role("link", name="Pilots").click()
    page.get_by_role("link", name="Define a pilot").click()
    page.get_by_label("Name", exact=True).fill("Acne cancellations")
    page.get_by_label("Short id for links (optional)").fill(pilot.PILOT_ID)
    page.get_by_label("Segment").select_option("cancelled_not_rescheduled")
    page.get_by_label(pilot.LINE, exact=True).check()
    page.get_by_label("patient", exact=True).check()  # cancelled by the patient
    page.get_by_label("Launch group size").fill("5")
    page.get_by_label("Holdout share (%)").fill(str(round(pilot.HOLDOUT_SHARE * 100)))
    page.get_by_label("Days (the define week included)").fill("28")
    page.evaluate("window.scrollTo(0, 0)")
    practice.shot(page, "pilot-define")
    practice.accessible(page)
    page.get_by_role("button", name="Define the pilot (a draft)").click()
    page.get_by_role("button", name="Start week 1 (define: nobody is messaged)").click()
    assert "Week 1 has begun" in page.locator(".notice").inner_text()

    # Week 1, define: the cohort's cancellation is held (nobody is messaged), another is out.
    now = pilot.now_of(stack)
    post_events(stack, A, patient("w1-a", phone="+15555550301"), pilot.cancelled("w1-a", now))
    post_events(
        stack, A, patient("w1-b", phone="+15555550302"), pilot.cancelled("w1-b", now, "rosacea")
    )
    pilot.advance(stack, CANCELLATION_GRACE)
    week1 = {"held": 1, "out": 1, "enrolled": 0, "exclusive": 0}
    assert wait_until(lambda: pilot.screened(stack) == week1), stack.log_tail(30)
    page.goto(f"{console}/pilots/{pilot.PILOT_ID}?week=1")
    preview = page.locator("table.preview").inner_text()
    assert "In the cohort: held" in preview
    assert "service line rosacea is not one the cohort names (acne)" in preview
    assert not texted(stack, A, "w1-a")
    practice.shot(page, "pilot-week1", page.locator("#preview-title").locator("xpath=.."))
    practice.accessible(page)
    other = practice.page("nurse-east-2", B)  # another clinic's nurse
    other.goto(f"{console}/pilots/{pilot.PILOT_ID}?week=1")
    assert other.locator("h1").inner_text() == "Not found" and "w1-a" not in other.content()
    _decide(page, "Launch: enrolment opens when week 2 begins", "The cohort is as defined.")

    # Week 2, launch: five cancellations fill the launch group, each in its hashed arm; the
    # messaged arm's patients answer (a cost objection, a later) and one rebooks by phone.
    pilot.advance(stack, timedelta(days=7))
    messaged, held_out = pilot.launch_group("w2-", messaged=3, held_out=2)
    now = pilot.now_of(stack)
    for n, pid in enumerate(messaged + held_out):
        post_events(stack, A, patient(pid, phone=f"+1555555041{n}"), pilot.cancelled(pid, now))
    pilot.advance(stack, CANCELLATION_GRACE)
    assert wait_until(lambda: pilot.arms(stack) == {"outreach": 3, "holdout": 2})
    assert wait_until(lambda: all(texted(stack, A, p) for p in messaged), timeout=40)
    assert not any(texted(stack, A, p) for p in held_out)  # the holdout is never messaged
    reply_as_patient(stack, A, messaged[0], COST_OBJECTION)
    reply_as_patient(stack, A, messaged[1], LATER)
    post_events(stack, A, pilot.booked(messaged[2], pilot.now_of(stack)))
    page.goto(f"{console}/pilots/{pilot.PILOT_ID}?week=2")
    assert "Messaged arm: 3" in page.locator("main").inner_text()
    _decide(page, "Continue as planned", "First messages went out inside allowed hours.")

    # Week 3, review: the objections by barrier, with the patients' own words.
    pilot.advance(stack, timedelta(days=7))
    post_events(stack, A, pilot.visited(messaged[2], pilot.now_of(stack)))
    assert wait_until(lambda: len(pilot.report(stack).get("objections") or []) >= 2)
    page.goto(f"{console}/pilots/{pilot.PILOT_ID}?week=3")
    review = page.locator("#objections-title").locator("xpath=..")
    assert COST_OBJECTION in review.inner_text() and LATER in review.inner_text()
    practice.shot(page, "pilot-review", review)
    practice.accessible(page)
    _decide(page, "Continue as planned", "Cost is the objection to answer first.")

    # Week 4, compare: rebooking and completion against the holdout and the previous weeks.
    pilot.advance(stack, timedelta(days=7))
    assert wait_until(
        lambda: (pilot.report(stack).get("arms") or {}).get("outreach", {}).get("completed") == 1
    )
    page.goto(f"{console}/pilots/{pilot.PILOT_ID}?week=4")
    report = page.locator("#report-title").locator("xpath=..")
    assert report.locator("svg[role=img]").count() == 3
    figures = report.inner_text()
    assert "33% (1 of 3)" in figures and "0% (0 of 2)" in figures  # rebooked: pilot, holdout
    assert "No difference in rebooking is shown against the holdout yet" in figures  # 3 vs 2
    assert "$110" in figures  # the visit's charges: revenue recovered
    practice.shot(page, "pilot-report", report)
    practice.accessible(page)
    _decide(page, "Adjust (say what in the note)", "Too few patients to tell: run it longer.")
    assert pilot.decisions(stack) == [
        (1, "launch", "admin-2"),
        (2, "continue", "admin-2"),
        (3, "continue", "admin-2"),
        (4, "adjust", "admin-2"),
    ]
    page.goto(f"{console}/pilots")
    assert "Acne cancellations" in page.locator("table").inner_text()
    practice.shot(page, "pilots")
