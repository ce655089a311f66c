"""The console's pure core: the queue's order and SLA clock, who may do what, the inbox's
reading, a patient's story, the parameter forms, the funnel's figures, sealed values."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from services.console.domain.inbox import inbox_items, reading, refusal_words
from services.console.domain.outcomes import dashboard_links, funnel_rows
from services.console.domain.params_form import form_fields, read_form
from services.console.domain.queue import order_queue, red_flags_waiting, sla_clock
from services.console.domain.staff import Act, Staff, parse_clinics, staff_from_claims
from services.console.domain.story import build_story
from services.console.sealing import PatientRefs, Sealer
from tests.console.fakes import NOW
from tests.console.world import ANA, A, build_world, case

SECRET = "a-console-secret-" + "y" * 20


def test_red_flags_come_first_then_unanswered_pages_then_severity_then_age() -> None:
    cases = [
        case("old-normal", ANA, "clinical_question", "normal", 300),
        case("new-red", ANA, "red_flag", "urgent", 2),
        case("urgent-question", ANA, "clinical_question", "urgent", 10),
        {**case("resolved-red", ANA, "red_flag", "urgent", 500), "state": "resolved"},
        {**case("exhausted", ANA, "booking_failed", "low", 50), "exhausted": True},
        case("older-red", ANA, "red_flag", "urgent", 20),
    ]
    order = [item.escalation_id for item in order_queue(cases)]
    assert order == [
        "older-red",
        "new-red",
        "exhausted",
        "urgent-question",
        "old-normal",
        "resolved-red",
    ]
    items = order_queue(cases)
    assert items[0].loud and items[0].red_flag and not items[-1].loud
    assert red_flags_waiting(items) == 2


def test_the_sla_clock_runs_turns_due_then_overdue_and_stops_when_taken() -> None:
    base = case("c", ANA, "red_flag", "urgent", 4)
    running = sla_clock({**base, "ack_due_at": (NOW + timedelta(minutes=10)).isoformat()})
    assert (running.state, running.label, running.seconds_left) == ("running", "Due in 10 min", 600)
    soon = sla_clock({**base, "ack_due_at": (NOW + timedelta(minutes=1)).isoformat()})
    assert soon.state == "due_soon" and soon.alarming
    late = sla_clock({**base, "ack_due_at": (NOW - timedelta(minutes=75)).isoformat()})
    assert (late.state, late.label) == ("overdue", "Overdue by 1 h 15 min")
    taken = sla_clock(
        {
            **base,
            "state": "acknowledged",
            "acknowledged_at": (NOW - timedelta(minutes=1)).isoformat(),
        }
    )
    assert (taken.state, taken.label, taken.seconds_left) == ("met", "Taken after 3 min", None)
    held = sla_clock(
        {
            **base,
            "state": "queued",
            "ack_due_at": None,
            "page_at": (NOW + timedelta(hours=9)).isoformat(),
        }
    )
    assert (held.state, held.label) == ("held", "Held: paged in 9 h")
    assert sla_clock({**base, "exhausted": True}).state == "overdue"


def test_roles_and_clinic_scope_decide_what_is_offered() -> None:
    nurse = Staff("nurse-1", "operator", frozenset({A}))
    desk = Staff("desk-1", "viewer", frozenset({A}))
    admin = Staff("admin-1", "admin", None)
    assert nurse.may_in(Act.resolve, A) and not nurse.may_in(Act.resolve, "clinic-b")
    assert not nurse.may(Act.approve_words) and not nurse.may(Act.edit_segments)
    assert desk.may_in(Act.read, A) and not desk.may(Act.reply)
    assert admin.may_in(Act.edit_segments, "anywhere")
    with pytest.raises(ValueError, match="only an admin"):
        Staff("x", "operator", None)
    assert parse_clinics("operator", "clinic-a, clinic-b") == frozenset({"clinic-a", "clinic-b"})
    assert parse_clinics("admin", "*") is None
    for role, text in (("operator", "*"), ("viewer", ""), ("viewer", "a:b")):
        with pytest.raises(ValueError):
            parse_clinics(role, text)


def test_an_identity_token_gives_role_and_clinics_or_a_clear_refusal() -> None:
    claims = {"sub": "u-7", "revisit_role": "operator", "revisit_clinics": ["clinic-a"]}
    staff = staff_from_claims(claims, "revisit_role", "revisit_clinics")
    assert (staff.subject, staff.role, staff.clinics, staff.via) == (
        "u-7",
        "operator",
        frozenset({"clinic-a"}),
        "oidc",
    )
    with pytest.raises(ValueError, match="no Revisit role"):
        staff_from_claims({**claims, "revisit_role": "superuser"}, "revisit_role", "c")
    with pytest.raises(ValueError, match="gives no clinics"):
        staff_from_claims({**claims, "revisit_clinics": 7}, "revisit_role", "revisit_clinics")


def test_the_inbox_reads_confidence_in_words_and_puts_red_flags_first() -> None:
    assert reading({"intent": "question", "confidence": 0.6}).sureness == "fairly sure (60%)"
    assert reading({"intent": "unknown", "confidence": 0.3}).sureness == "unsure (30%)"
    assert reading({"intent": "book"}).sureness == "confidence not recorded"
    assert reading({"intent": "question", "barrier": "cost"}).label == "Question · barrier: cost"
    rows = [
        {"patient_key": "a:1", "waiting_since": NOW.isoformat(), "reading": {"intent": "question"}},
        {"patient_key": "a:2", "waiting_since": NOW.isoformat(), "red_flag": True},
        {"patient_key": "a:3", "waiting_since": (NOW - timedelta(hours=1)).isoformat()},
    ]
    assert [i.patient_key for i in inbox_items(rows)] == ["a:2", "a:3", "a:1"]
    refusal = {
        "reason": "quiet_hours",
        "message": "it is quiet hours where the patient lives",
        "retry_after": "2026-03-04T13:00:00+00:00",
    }
    assert refusal_words(refusal).endswith("(from 2026-03-04 13:00 UTC)")


def test_the_story_says_why_and_shows_each_steps_words_as_sent() -> None:
    world = build_world()
    story = build_story(world.outreach[ANA], world.conversations[ANA], world.explain[ANA])
    [seq] = story.sequences
    assert seq.why.startswith("You cancelled your skin check")
    assert (seq.source, seq.window) == ("appointment a-9", "2026-03-01 to 2026-03-31")
    sent, planned = seq.steps
    assert sent.sent_words is not None and sent.sent_words.startswith("Bluebonnet Dermatology")
    assert planned.sent_words is None and planned.status == "planned"
    assert [r.words for r in story.replies] == [world.conversations[ANA][1]["body"]]
    assert story.segments[0]["sources"] == ["appointment a-9"]


def test_a_parameter_form_is_read_back_with_one_precise_error_per_field() -> None:
    current = {"enabled": True, "delay_hours": 2, "skip_reasons": ["entered_in_error"]}
    fields = {f.name: f for f in form_fields(current)}
    assert (fields["enabled"].kind, fields["delay_hours"].value) == ("bool", "2")
    assert fields["skip_reasons"].value == '["entered_in_error"]'
    values, errors = read_form(current, {"p.delay_hours": "6", "p.skip_reasons": "[]"})
    assert (values, errors) == ({"enabled": False, "delay_hours": 6, "skip_reasons": []}, {})
    _, errors = read_form(current, {"p.delay_hours": "six", "p.skip_reasons": "[", "p.x": "1"})
    assert errors == {
        "delay_hours": "delay_hours: must be a whole number",
        "skip_reasons": "skip_reasons: must be valid JSON",
    }


def test_the_funnel_never_shows_a_missing_rate_as_zero() -> None:
    [row] = funnel_rows(
        [
            {
                "segment": "lapsed_patient",
                "eligible": 1200,
                "response_rate": None,
                "opt_out_rate": 0.034,
                "revenue_cents": 123456,
            }
        ]
    )
    assert row.label == "Lapsed patient"
    assert (row.figures["eligible"], row.figures["response_rate"]) == ("1,200", "—")
    assert (row.figures["opt_out_rate"], row.figures["revenue_cents"]) == ("3%", "$1,235")
    assert dashboard_links("", A) == []
    assert dashboard_links("http://grafana:3000/", A)[0][1].endswith(
        "/d/revisit-recall-outcomes?var-clinic=clinic-a"
    )


def test_patient_references_are_stable_opaque_and_unforgeable() -> None:
    refs = PatientRefs(SECRET)
    ref = refs.ref(ANA)
    assert ref == refs.ref(ANA) and ANA not in ref and "p-ana" not in ref
    assert refs.key(ref) == ANA
    assert refs.key(ref[:-2] + ("AA" if ref[-2:] != "AA" else "BB")) is None
    assert PatientRefs(SECRET + "z").key(ref) is None
    assert refs.key("not-a-reference") is None


def test_sealed_values_expire_and_open_only_for_their_purpose() -> None:
    session = Sealer(SECRET, "session")
    sealed = session.seal({"sub": "nurse-1"}, ttl_s=60, now=1000.0)
    assert session.open(sealed, now=1030.0) == {"sub": "nurse-1"}
    assert session.open(sealed, now=1061.0) is None
    assert Sealer(SECRET, "sign-in").open(sealed, now=1030.0) is None
    assert session.open(sealed[:-4] + "AAAA", now=1030.0) is None


CONSOLE = Path(__file__).resolve().parents[2] / "services" / "console"
DOES_IO = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "faststream",
    "asyncpg",
    "aiokafka",
    "jinja2",
    "asyncio",
    "socket",
    "services.console.adapters",
    "services.console.api",
)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((CONSOLE / "domain").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_nothing_that_does_io(path: Path) -> None:
    bad = {n for n in _imports(path) for f in DOES_IO if n == f or n.startswith(f + ".")}
    assert not bad


@pytest.mark.parametrize("path", sorted(CONSOLE.rglob("*.py")), ids=lambda p: p.name)
def test_console_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 300
