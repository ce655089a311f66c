"""The console's pages and forms with the services faked at the adapter base classes: sign-in
and its cookie, CSRF on every form, the queue and a case's actions, the inbox, a patient's
story, segments and words; and that nothing of another clinic is shown or done."""

from __future__ import annotations

import re

import httpx
import pytest

from services.console.app import create_app
from tests.console.conftest import BASE, Browser, settings
from tests.console.fakes import FakeTokens, fake_apis
from tests.console.world import ANA, BO, QUESTION, A, B, build_world

HREF = re.compile(r'(?:href|action)="([^"]+)"')


def ref_of(browser: Browser, patient_key: str) -> str:
    app = browser.client._transport.app  # type: ignore[attr-defined]
    ref: str = app.state.console.refs.ref(patient_key)
    return ref


async def test_a_page_asks_to_sign_in_first_and_returns_there_after(browser: Browser) -> None:
    page = await browser.client.get("/cases/esc-clinic-a-red")
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=%2Fcases%2Fesc-clinic-a-red"
    signed = await browser.sign_in()
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert "nurse-1" not in cookie and A not in cookie  # sealed, not readable
    assert (await browser.client.get("/cases/esc-clinic-a-red")).status_code == 200


async def test_the_sign_in_form_needs_its_own_token_and_a_proper_staff_id(
    browser: Browser,
) -> None:
    forged = await browser.client.post(
        "/sign-in", data={"subject": "nurse-1", "role": "admin", "clinics": "*"}
    )
    assert forged.status_code == 403 and "revisit_console=" not in forged.headers.get(
        "set-cookie", ""
    )
    bad = await browser.sign_in(subject="nurse one")
    assert bad.status_code == 422 and "Staff id" in bad.text
    nobody = await browser.sign_in(role="operator", clinics="*")
    assert nobody.status_code == 422 and "only an admin" in nobody.text


async def test_cookies_are_secure_away_from_this_machine() -> None:
    app = create_app(
        settings(public_url="https://console.clinic.example"),
        apis=fake_apis(build_world()),
        tokens=FakeTokens(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://console.clinic.example"
    ) as c:
        browser = Browser(c, build_world())
        assert "Secure" in (await browser.sign_in()).headers["set-cookie"]


async def test_the_queue_puts_red_flags_first_loud_and_polls_without_reloading(
    browser: Browser,
) -> None:
    await browser.sign_in()
    page = await browser.client.get("/escalations")
    assert page.status_code == 200
    rows = page.text[page.text.index('id="queue-rows"') :]
    assert rows.index("esc-clinic-a-red") < rows.index("esc-clinic-a-q")
    assert 'class="case sev-urgent loud"' in page.text and "1 red flag waiting" in page.text
    assert "esc-clinic-b" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    polled = await browser.client.get("/escalations/rows")
    assert polled.status_code == 200 and polled.headers["x-red-flags"] == "1"
    again = await browser.client.get(
        "/escalations/rows", headers={"If-None-Match": polled.headers["etag"]}
    )
    assert again.status_code == 304
    browser.world.cases["esc-clinic-a-red"]["state"] = "acknowledged"
    changed = await browser.client.get(
        "/escalations/rows", headers={"If-None-Match": polled.headers["etag"]}
    )
    assert changed.status_code == 200 and changed.headers["x-red-flags"] == "0"


async def test_a_nurse_takes_notes_and_resolves_a_case_through_its_forms(
    browser: Browser,
) -> None:
    await browser.sign_in()
    page = "/cases/esc-clinic-a-red"
    shown = await browser.client.get(page)
    assert QUESTION in shown.text and "Ana" in shown.text  # the conversation and the patient
    assert (
        (await browser.post(page, f"{page}/acknowledge"))
        .headers["location"]
        .endswith("done=acknowledged")
    )
    await browser.post(page, f"{page}/notes", note="Called her, no answer.")
    done = await browser.post(
        page, f"{page}/resolve", outcome="answered", note="Seen today", resume_outreach="no"
    )
    assert done.status_code == 303
    assert browser.world.calls == [
        ("acknowledge", "esc-clinic-a-red", "nurse-1"),
        ("note", "esc-clinic-a-red", "nurse-1"),
        ("resolve", "esc-clinic-a-red", "answered", "False"),
    ]
    after = await browser.client.get(f"{page}?done=resolved")
    assert "The case is resolved." in after.text and "Seen today" in after.text


async def test_no_form_is_accepted_without_its_token_or_from_another_site(
    browser: Browser,
) -> None:
    await browser.sign_in()
    url = "/cases/esc-clinic-a-red/acknowledge"
    assert (await browser.client.post(url, data={})).status_code == 403
    token = await browser.csrf("/cases/esc-clinic-a-red")
    elsewhere = await browser.client.post(
        url, data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert browser.world.calls == []


async def test_a_refusal_is_shown_on_the_case_page(browser: Browser) -> None:
    await browser.sign_in()
    page = "/cases/esc-clinic-a-red"
    empty = await browser.post(page, f"{page}/notes", note="   ")
    assert empty.status_code == 409 and "note: write something first" in empty.text


async def test_a_viewer_is_offered_no_action_and_the_service_refuses_one_anyway(
    browser: Browser,
) -> None:
    await browser.sign_in(subject="desk-1", role="viewer")
    page = await browser.client.get("/cases/esc-clinic-a-red")
    assert "Take this case" not in page.text and "Resolve the case" not in page.text
    forced = await browser.post("/cases/esc-clinic-a-red", "/cases/esc-clinic-a-red/acknowledge")
    assert forced.status_code == 404 and browser.world.calls == []


async def test_a_nurse_of_clinic_a_sees_and_does_nothing_of_clinic_b(browser: Browser) -> None:
    await browser.sign_in(clinics=A)
    assert (await browser.client.get("/cases/esc-clinic-b-red")).status_code == 404
    other_queue = await browser.client.get(f"/escalations?clinic={B}")
    assert "esc-clinic-b" not in other_queue.text and "esc-clinic-a-red" in other_queue.text
    story = await browser.client.get(f"/patients/{ref_of(browser, BO)}")
    assert story.status_code == 404 and "Bo" not in story.text
    inbox = await browser.client.get(f"/inbox/{ref_of(browser, BO)}")
    assert inbox.status_code == 404
    token = await browser.csrf("/escalations")
    for url, fields in (
        ("/cases/esc-clinic-b-red/acknowledge", {}),
        ("/cases/esc-clinic-b-red/resolve", {"outcome": "answered"}),
        (f"/inbox/{ref_of(browser, BO)}/reply", {"body": "hi", "reply_key": "k" * 12}),
        (f"/patients/{ref_of(browser, BO)}/outreach", {"action": "stop", "reason": "other"}),
    ):
        refused = await browser.client.post(url, data={"csrf": token, **fields})
        assert refused.status_code in (403, 404), url
    assert browser.world.calls == []
    forged = await browser.client.get("/patients/AAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 404


async def test_the_inbox_shows_words_and_reading_and_sends_a_reply_in_the_nurses_name(
    browser: Browser,
) -> None:
    await browser.sign_in()
    inbox = await browser.client.get("/inbox")
    assert QUESTION in inbox.text and "Question · barrier: cost" in inbox.text
    assert "fairly sure (60%)" in inbox.text
    page = f"/inbox/{ref_of(browser, ANA)}"
    sent = await browser.post(
        page,
        f"{page}/reply",
        body="A skin check is $150.",
        reply_key="form-1234",
        mark_handled="yes",
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("done=sent")
    assert browser.world.calls == [("reply", ANA, "nurse-1", "A skin check is $150.")]
    assert "nurse-1 (staff)" in (await browser.client.get(page)).text
    assert QUESTION not in (await browser.client.get("/inbox")).text  # handled


async def test_a_refused_staff_reply_says_why_and_keeps_the_page(browser: Browser) -> None:
    await browser.sign_in()
    browser.world.refuse_reply = {
        "reason": "opted_out",
        "message": "the patient opted out of messages on this channel; call them instead",
        "retry_after": None,
    }
    page = f"/inbox/{ref_of(browser, ANA)}"
    refused = await browser.post(page, f"{page}/reply", body="Hello", reply_key="form-5678")
    assert refused.status_code == 409
    assert "Not sent: the patient opted out of messages on this channel" in refused.text
    assert browser.world.calls == []


async def test_a_conversation_is_assigned_or_handled(browser: Browser) -> None:
    await browser.sign_in()
    page = f"/inbox/{ref_of(browser, ANA)}"
    bad = await browser.post(page, f"{page}/assign", assigned_to="two words")
    assert bad.status_code == 422
    await browser.post(page, f"{page}/assign", assigned_to="nurse-2")
    await browser.post(page, f"{page}/handled")
    assert browser.world.calls == [("assign", ANA, "nurse-2"), ("handled", ANA, "nurse-1")]


async def test_the_story_says_why_the_patient_was_messaged_and_outreach_pauses_with_a_reason(
    browser: Browser,
) -> None:
    await browser.sign_in()
    page = f"/patients/{ref_of(browser, ANA)}"
    story = await browser.client.get(page)
    assert "You cancelled your skin check on 1 March" in story.text
    assert "appointment a-9" in story.text and "Bluebonnet Dermatology: your skin" in story.text
    no_reason = await browser.post(page, f"{page}/outreach", action="pause", reason="bored")
    assert no_reason.status_code == 422 and browser.world.calls == []
    await browser.post(
        page, f"{page}/outreach", action="pause", reason="clinical_hold", note="Dr asked"
    )
    assert browser.world.calls == [("outreach", ANA, "pause", "clinical_hold")]
    assert "outreach paused by staff" in (await browser.client.get(page)).text


async def test_no_link_or_form_on_any_page_carries_a_patient_key(browser: Browser) -> None:
    await browser.sign_in()
    ref = ref_of(browser, ANA)
    for path in (
        "/escalations",
        "/cases/esc-clinic-a-red",
        "/inbox",
        f"/inbox/{ref}",
        f"/patients/{ref}",
        "/segments",
        "/words",
        "/outcomes",
        "/pilots",
    ):
        page = await browser.client.get(path)
        assert page.status_code == 200, path
        for link in HREF.findall(page.text):
            assert ":p-" not in link and "p-ana" not in link and "p-soon" not in link, (path, link)


async def test_an_admin_edits_segment_parameters_with_validation(browser: Browser) -> None:
    await browser.sign_in(subject="admin-1", role="admin", clinics=A)
    page = "/segments/cancelled_not_rescheduled"
    form = {"clinic": A, "p.enabled": "on", "p.delay_hours": "x", "p.window_days": "30"}
    wrong = await browser.post(page, page, **form)
    assert wrong.status_code == 422 and "delay_hours: must be a whole number" in wrong.text
    refused = await browser.post(page, page, **{**form, "p.delay_hours": "4", "p.window_days": "0"})
    assert refused.status_code == 422 and "window_days" in refused.text
    saved = await browser.post(page, page, **{**form, "p.delay_hours": "4"})
    assert saved.status_code == 303
    assert browser.world.calls == [("params", A, "cancelled_not_rescheduled")]
    block = browser.world.params[A]["parameters"]["cancelled_not_rescheduled"]
    assert block == {"enabled": True, "delay_hours": 4, "window_days": 30}


async def test_an_operator_reads_parameters_but_cannot_change_them(browser: Browser) -> None:
    await browser.sign_in()
    page = await browser.client.get("/segments/cancelled_not_rescheduled")
    assert "readonly" in page.text and "Save and evaluate" not in page.text
    tried = await browser.post(
        "/segments/cancelled_not_rescheduled",
        "/segments/cancelled_not_rescheduled",
        **{"clinic": A, "p.delay_hours": "4", "p.window_days": "30"},
    )
    assert tried.status_code == 404 and browser.world.calls == []


async def test_words_show_the_linter_and_an_admin_approves_a_clean_draft(
    browser: Browser,
) -> None:
    await browser.sign_in(subject="admin-1", role="admin", clinics=A)
    page = await browser.client.get("/words")
    assert "condition word: names a condition" in page.text
    assert "Approve version 2" in page.text and "Approve version 1" not in page.text
    approved = await browser.post("/words", "/words/2/approve", clinic=A)
    assert approved.headers["location"].endswith("done=approved")
    assert browser.world.calls == [("approve", "2")]


async def test_outcomes_and_pilots_show_the_services_figures(browser: Browser) -> None:
    await browser.sign_in()
    outcomes = await browser.client.get("/outcomes")
    assert "Cancelled, not rescheduled" in outcomes.text and "$1,050" in outcomes.text
    pilots = await browser.client.get("/pilots")
    assert "Cancellations, March" in pilots.text and "20%" in pilots.text


async def test_signing_out_ends_the_session(browser: Browser) -> None:
    await browser.sign_in()
    out = await browser.post("/escalations", "/sign-out")
    assert out.status_code == 303 and 'revisit_console=""' in out.headers["set-cookie"]
    browser.client.cookies.clear()
    assert (await browser.client.get("/escalations")).status_code == 303


async def test_health_and_readiness(browser: Browser) -> None:
    assert (await browser.client.get("/healthz")).json() == {"status": "ok"}
    assert (await browser.client.get("/readyz")).status_code == 200


def test_production_refuses_the_dev_sign_in_weak_secrets_and_plain_http() -> None:
    good = {
        "profile": "production",
        "secret": "s" * 40,
        "dev_sign_in": False,
        "oidc_issuer": "https://id.clinic.example",
        "oidc_client_id": "revisit-console",
        "public_url": "https://console.clinic.example",
    }
    from services.console.settings import ConsoleSettings
    from shared.config import AuthSettings

    auth = AuthSettings()
    ConsoleSettings(**good, auth=auth)  # type: ignore[arg-type]
    # the dev token's secret is refused: the console forwards each person's access token
    with pytest.raises(ValueError, match="REVISIT_JWT_SECRET is for the dev stack only"):
        ConsoleSettings(**good, auth=AuthSettings(revisit_jwt_secret="j" * 40))  # type: ignore[arg-type]
    for change, words in (
        ({"dev_sign_in": True}, "DEV_SIGN_IN"),
        ({"secret": "short"}, "SECRET"),
        ({"public_url": "http://console.clinic.example"}, "https"),
        ({"oidc_issuer": ""}, "OIDC_ISSUER"),
    ):
        with pytest.raises(ValueError, match=words):
            ConsoleSettings(**{**good, **change}, auth=auth)  # type: ignore[arg-type]
    _ = BASE
