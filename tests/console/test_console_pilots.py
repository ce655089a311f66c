"""The pilot pages with the services faked at their adapters (the sequencer's pilot rules run in
the fake): an admin defines a pilot with field-by-field validation, starts week 1 and launches;
each week shows what it is for (who is in and why, the words, the route; the launch group; the
objections with the patients' words; the report and its charts); decisions are recorded with
their checklist, refused when the sequencer refuses; nothing of another clinic's pilot shows."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.console.conftest import Browser
from tests.console.test_console_routes import HREF
from tests.console.world import QUESTION, A, B

PILOT_A, PILOT_B = f"pilot-{A}", f"pilot-{B}"
DEFINITION = {
    "clinic": A,
    "name": "Laser cancellations",
    "pilot_id": "laser-spring",
    "segment": "follow_up_not_booked",
    "c.service_lines.laser": "on",
    "c.cancelled_by.patient": "on",
    "provider_ids": "dr-1, dr-2",
    "min_age_days": "",
    "max_age_days": "60",
    "cohort_size": "6",
    "holdout_percent": "34",
    "days": "28",
    "baseline_days": "28",
}
DEFINE_CHECKLIST = {f"check.{i}": "on" for i in ("eligibility", "words", "escalation_route")}


async def _admin(browser: Browser) -> None:
    await browser.sign_in(subject="admin-1", role="admin", clinics=A)


async def test_an_admin_defines_a_pilot_and_every_wrong_field_is_named(browser: Browser) -> None:
    await _admin(browser)
    form = await browser.client.get(f"/pilots/new?clinic={A}")
    assert form.status_code == 200 and 'name="c.service_lines.laser"' in form.text
    wrong = {**DEFINITION, "cohort_size": "six", "holdout_percent": "95", "pilot_id": "Laser!"}
    refused = await browser.post("/pilots/new", "/pilots/new", **wrong)
    assert refused.status_code == 422 and browser.world.calls == []
    assert "Launch group size: a whole number from 1 to 1000000" in refused.text
    assert "Holdout share (%): from 0 to 90" in refused.text
    assert "Short id: up to 64 lower-case letters" in refused.text
    assert 'value="Laser cancellations"' in refused.text  # what was typed stays
    ages = await browser.post("/pilots/new", "/pilots/new", **{**DEFINITION, "min_age_days": "90"})
    assert "min_age_days must not be above max_age_days" in ages.text
    made = await browser.post("/pilots/new", "/pilots/new", **DEFINITION)
    assert made.status_code == 303
    assert made.headers["location"] == "/pilots/laser-spring?done=defined"
    pilot = browser.world.pilot_store["laser-spring"]
    assert (pilot.clinic_id, pilot.cohort_size, pilot.holdout_share) == (A, 6, 0.34)
    assert pilot.cohort.model_dump(exclude_none=True) == {
        "service_lines": ("laser",),
        "cancelled_by": ("patient",),
        "provider_ids": ("dr-1", "dr-2"),
        "max_age_days": 60,
    }
    again = await browser.post("/pilots/new", "/pilots/new", **DEFINITION)
    assert again.status_code == 409 and "a pilot with this id already exists" in again.text


async def test_a_draft_is_changed_then_week_one_starts_and_the_launch_needs_the_checklist(
    browser: Browser,
) -> None:
    await _admin(browser)
    await browser.post("/pilots/new", "/pilots/new", **DEFINITION)
    page = "/pilots/laser-spring"
    draft = await browser.client.get(page)
    assert "Start week 1" in draft.text and "Start the pilot first" in draft.text
    edit = f"{page}/edit"
    changed = await browser.post(edit, edit, **{**DEFINITION, "cohort_size": "8"})
    assert changed.headers["location"] == f"{page}?done=changed"
    assert browser.world.pilot_store["laser-spring"].cohort_size == 8
    started = await browser.post(page, f"{page}/start")
    assert started.headers["location"] == f"{page}?week=1&done=started"
    week1 = await browser.client.get(f"{page}?week=1")
    assert "Week 1: define (now)" in week1.text and "Record the decision" in week1.text
    assert 'value="launch"' in week1.text
    partial = await browser.post(
        page, f"{page}/decisions", week="1", decision="launch", **DEFINE_CHECKLIST
    )
    assert partial.status_code == 409
    assert "launch needs every item of week 1 confirmed; missing: holdout" in partial.text
    assert browser.world.pilot_store["laser-spring"].launched_at is None
    launched = await browser.post(
        page,
        f"{page}/decisions",
        week="1",
        decision="launch",
        note="The preview shows the cohort as defined.",
        **{**DEFINE_CHECKLIST, "check.holdout": "on"},
    )
    assert launched.headers["location"] == f"{page}?week=1&done=decided"
    pilot = browser.world.pilot_store["laser-spring"]
    assert pilot.launched_at == pilot.starts_at + timedelta(days=7)  # when week 2 begins
    shown = await browser.client.get(f"{page}?week=1")
    assert "Decided: <strong>launch</strong> by admin-1" in shown.text
    assert 'value="launch"' not in shown.text  # launched once
    ahead = await browser.post(page, f"{page}/decisions", week="3", decision="continue")
    assert ahead.status_code == 409
    assert "Not recorded: week 3 has not begun: the pilot is in week 1." in ahead.text


async def test_only_an_admin_starts_launches_or_stops_and_a_running_pilot_keeps_its_segment(
    browser: Browser,
) -> None:
    await browser.sign_in()  # an operator
    listed = await browser.client.get("/pilots")
    assert "Cancellations, March" in listed.text and "Define a pilot" not in listed.text
    page = f"/pilots/{PILOT_A}"
    week4 = await browser.client.get(page)
    assert "Close: no new enrolment" not in week4.text
    assert "Stop: close the pilot now (holdouts end) (an admin decides this)" in week4.text
    stop = await browser.post(page, f"{page}/decisions", week="4", decision="stop")
    assert stop.status_code == 409 and "stop needs an admin" in stop.text
    defined = await browser.post("/pilots", "/pilots/new", **DEFINITION)
    assert defined.status_code == 404 and browser.world.pilot_store.get("laser-spring") is None
    adjusted = await browser.post(
        page, f"{page}/decisions", week="4", decision="adjust", note="Try a second reminder."
    )
    assert adjusted.status_code == 303
    assert browser.world.calls == [("decide", PILOT_A, "4", "adjust")]
    browser.client.cookies.clear()
    await _admin(browser)
    twin = {**DEFINITION, "pilot_id": "twin", "segment": "cancelled_not_rescheduled"}
    await browser.post("/pilots/new", "/pilots/new", **twin)
    refused = await browser.post("/pilots/twin", "/pilots/twin/start")
    assert refused.headers["location"] == "/pilots/twin?done=not_started"


async def test_week_one_shows_who_is_in_and_why_the_words_and_the_route(browser: Browser) -> None:
    await browser.sign_in()
    page = await browser.client.get(f"/pilots/{PILOT_A}?week=1")
    assert page.status_code == 200
    assert "In the cohort: enrolled: messaged arm" in page.text
    assert "cancelled by practice is not one the cohort names (patient)" in page.text
    assert "Enrolled: 1" in page.text and "Out: 1" in page.text
    assert "Your {service_name} was cancelled. Reply STOP to opt out." in page.text
    assert "en: draft" in page.text and "none approved" in page.text  # step 2's words
    assert "nurse-kim, then nurse-lee" in page.text
    assert "No routing rule takes it" in page.text  # no rule for clinical questions
    out = await browser.client.get(f"/pilots/{PILOT_A}?week=1&verdict=out")
    assert "not one the cohort names" in out.text and "messaged arm" not in out.text


async def test_week_three_reads_objections_by_barrier_with_the_patients_own_words(
    browser: Browser,
) -> None:
    await browser.sign_in()
    page = await browser.client.get(f"/pilots/{PILOT_A}?week=3")
    assert "Barrier: cost" in page.text and "(2 replies)" in page.text
    assert f'<q class="words">{QUESTION}</q>' in page.text  # from the messenger, not metrics
    assert '<desc id="pilot-objections-desc">Barrier: cost: 2</desc>' in page.text  # the chart
    assert "Question: 1, Later: 1" in page.text
    browser.world.conversations.clear()  # the messenger no longer has the words
    gone = await browser.client.get(f"/pilots/{PILOT_A}?week=3")
    assert "the words are unavailable" in gone.text


async def test_week_four_reports_both_comparisons_with_charts_tables_and_no_false_claim(
    browser: Browser,
) -> None:
    await browser.sign_in()
    page = await browser.client.get(f"/pilots/{PILOT_A}?week=4")
    text = page.text
    assert "No difference in rebooking is shown against the holdout yet" in text
    assert "+40.0 points (95% interval \u221210.0 points to +70.0 points)" in text
    row = re.search(r"Rebooked against the previous weeks</th><td>[^<]+</td><td>(\w+)", text)
    assert row and row.group(1) == "yes"  # that interval leaves out no difference
    assert text.count('role="img"') == 3 and text.count("<desc") == 3
    assert "Messaged (the pilot) 40% (4 of 10)" in text  # the text alternative
    assert "<td>40% (4 of 10)</td>" in text  # and the same figures in a table
    browser.world.pilot_reports.clear()
    empty = await browser.client.get(f"/pilots/{PILOT_A}?week=4")
    assert "Nothing to compare yet" in empty.text and 'role="img"' not in empty.text


async def test_another_clinics_pilot_is_not_found_and_cannot_be_decided(browser: Browser) -> None:
    await browser.sign_in(subject="admin-1", role="admin", clinics=A)
    for week in (1, 3, 4):
        page = await browser.client.get(f"/pilots/{PILOT_B}?week={week}")
        assert page.status_code == 404 and "Cancellations" not in page.text
    tried = await browser.post(
        f"/pilots/{PILOT_A}", f"/pilots/{PILOT_B}/decisions", week="4", decision="stop"
    )
    closed = await browser.post(f"/pilots/{PILOT_A}", f"/pilots/{PILOT_B}/close")
    assert (tried.status_code, closed.status_code) == (404, 404)
    assert browser.world.calls == []
    listed = await browser.client.get(f"/pilots?clinic={B}")
    assert PILOT_B not in listed.text  # the list stays on the person's own clinic


async def test_no_pilot_page_puts_a_patient_key_in_a_link(browser: Browser) -> None:
    await browser.sign_in()
    for week in (1, 2, 3, 4):
        page = await browser.client.get(f"/pilots/{PILOT_A}?week={week}")
        for link in HREF.findall(page.text):
            assert ":p-" not in link and "p-ana" not in link, (week, link)


async def test_a_person_of_two_clinics_reads_the_words_and_route_of_the_pilots_own_clinic(
    browser: Browser,
) -> None:
    browser.world.routes[(B, "red_flag")] = {
        "rotation_id": "east-line",
        "escalation_chain": [{"rotation_id": "east-line", "responder_id": "nurse-east"}],
    }
    await browser.sign_in(clinics=f"{A},{B}")
    listed = await browser.client.get(f"/pilots?clinic={B}")
    assert f'href="/pilots/{PILOT_B}?week=4&amp;clinic={B}"' in listed.text
    page = await browser.client.get(f"/pilots/{PILOT_B}?week=1")  # read first for clinic A
    assert "nurse-east" in page.text and "nurse-kim" not in page.text
