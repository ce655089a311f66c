"""One contract, two implementations: the console's pilot client behaves the same on the fake the
route tests use and on the real httpx client talking to the real sequencer (in process, on the
embedded Postgres and broker, on the controlled clock). If the fake drifts, these fail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.console.adapters.base import ApiError
from services.console.adapters.pilots import HttpPilotsApi, PilotsApi
from tests.console.fake_pilots import FakePilots
from tests.console.fakes import World

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
DEFINE = ["eligibility", "words", "escalation_route", "holdout"]


@dataclass
class Side:
    pilots: PilotsApi
    token: Callable[[str, str], str]  # (role, clinic) -> credential
    clinic: str
    move_to: Callable[[datetime], Awaitable[None]]


def _fake_side() -> Side:
    world = World(now=T0)

    async def move(at: datetime) -> None:
        world.now = at

    return Side(FakePilots(world), lambda role, c: f"fake:{role}-1:{role}:{c}", "clinic-f", move)


@pytest.fixture(scope="module")
async def real_side(pg: Any, kafka: Any) -> AsyncIterator[Side]:
    from revisit.migrate import migrate_all
    from shared.auth import issue_staff_token
    from tests.sequencer.service_harness import JWT, running_sequencer

    await migrate_all(pg.dsn)
    async with running_sequencer(pg.dsn, kafka.bootstrap, T0) as svc:

        def token(role: str, clinic: str) -> str:
            return issue_staff_token(
                JWT,
                subject=f"{role}-1",
                role=role,  # type: ignore[arg-type]
                clinics=[clinic],
                ttl=timedelta(hours=1),
            )

        yield Side(
            HttpPilotsApi(svc.client, "http://sequencer"), token, svc.clinic_id, svc.set_time
        )


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest) -> Side:
    found: Side = _fake_side() if request.param == "fake" else request.getfixturevalue("real_side")
    return found


def _definition(side: Side, **changes: Any) -> dict[str, Any]:
    return {
        "pilot_id": f"contract-{uuid.uuid4().hex[:8]}",
        "clinic_id": side.clinic,
        "name": "Cosmetic cancellations",
        "segment": "cancelled_not_rescheduled",
        "cohort": {"service_lines": ["laser"], "cancelled_by": ["patient"]},
        "cohort_size": 4,
        "holdout_share": 0.25,
        **changes,
    }


async def test_only_an_admin_defines_and_a_bad_definition_names_its_field(side: Side) -> None:
    with pytest.raises(ApiError) as operator:
        await side.pilots.define(side.token("operator", side.clinic), _definition(side))
    assert operator.value.status == 403
    admin = side.token("admin", side.clinic)
    with pytest.raises(ApiError) as short:
        await side.pilots.define(admin, _definition(side, days=7))
    assert short.value.status == 422
    assert [d["where"] for d in short.value.detail] == ["body.days"]
    made = await side.pilots.define(admin, _definition(side))
    assert (made["status"], made["week"], made["cohort_words"]) == (
        "draft",
        None,
        "segment cancelled_not_rescheduled; service lines: laser; cancelled by: patient",
    )
    with pytest.raises(ApiError) as twice:
        await side.pilots.define(admin, _definition(side, pilot_id=made["pilot_id"]))
    assert twice.value.status == 409


async def test_a_draft_changes_then_starts_and_its_weeks_take_only_their_decisions(
    side: Side,
) -> None:
    await side.move_to(T0)
    admin = side.token("admin", side.clinic)
    pid = (await side.pilots.define(admin, _definition(side)))["pilot_id"]
    changed = await side.pilots.change(admin, pid, {"cohort_size": 6, "cohort": {}})
    assert (changed["cohort_size"], changed["cohort"]) == (6, {})
    draft = await side.pilots.review(admin, pid)
    assert (draft["phases"], draft["weeks"]) == ([], [])
    assert (await side.pilots.preview(admin, pid, None))["patients"] == []
    started = await side.pilots.start(admin, pid)
    assert (started["status"], started["week"], started["phase"]) == ("running", 1, "define")
    with pytest.raises(ApiError) as frozen:
        await side.pilots.change(admin, pid, {"cohort_size": 3})
    assert frozen.value.status == 409
    review = await side.pilots.review(side.token("viewer", side.clinic), pid)
    assert [p["week"] for p in review["phases"]] == [1, 2, 3, 4]
    assert [c["item"] for c in review["phases"][0]["checklist"]] == DEFINE
    assert review["phases"][0]["decisions_allowed"] == ["launch", "adjust", "stop"]
    operator = side.token("operator", side.clinic)
    for week, decision, status in ((1, "launch", 403), (1, "continue", 409), (2, "continue", 409)):
        with pytest.raises(ApiError) as refused:
            await side.pilots.decide(operator, pid, week, decision, DEFINE, "")
        assert refused.value.status == status, (week, decision)
    with pytest.raises(ApiError) as partial:
        await side.pilots.decide(admin, pid, 1, "launch", DEFINE[:3], "")
    assert "missing: holdout" in partial.value.words
    await side.pilots.decide(admin, pid, 1, "launch", DEFINE, "as planned")
    await side.move_to(T0 + timedelta(days=15))
    review = await side.pilots.review(operator, pid)
    assert (review["week"], review["phase"]) == (3, "review")
    assert review["launched_at"] == (T0 + timedelta(days=7)).isoformat()
    await side.pilots.decide(operator, pid, 3, "continue", ["objections"], "timing first")
    phases = (await side.pilots.review(operator, pid))["phases"]
    assert phases[2]["decisions"][0]["decision"] == "continue"
    assert [c["confirmed"] for c in phases[2]["checklist"]] == [True, False, False]
    closed = await side.pilots.close(admin, pid)
    assert closed["status"] == "closed"
    with pytest.raises(ApiError) as gone:
        await side.pilots.delete(admin, pid)
    assert gone.value.status == 409


async def test_another_clinics_pilot_is_not_found(side: Side) -> None:
    admin = side.token("admin", side.clinic)
    pid = (await side.pilots.define(admin, _definition(side)))["pilot_id"]
    elsewhere = side.token("admin", "clinic-elsewhere")
    for call in (
        side.pilots.pilot(elsewhere, pid),
        side.pilots.review(elsewhere, pid),
        side.pilots.preview(elsewhere, pid, None),
        side.pilots.start(elsewhere, pid),
    ):
        with pytest.raises(ApiError) as hidden:
            await call
        assert hidden.value.status == 404
    listed = await side.pilots.pilots(admin, side.clinic)
    assert pid in [p["pilot_id"] for p in listed]
    await side.pilots.delete(admin, pid)
    assert pid not in [p["pilot_id"] for p in await side.pilots.pilots(admin, side.clinic)]
