"""Composition root of escalation: settings -> runtime -> consumer, timers, dispatcher, API."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from services.escalation import handlers
from services.escalation.api import ROUTERS
from services.escalation.dispatch import PageDispatcher
from services.escalation.live_routes import check_every_clinic
from services.escalation.notifiers import NotifierFactory
from services.escalation.repository import SCHEMA
from services.escalation.settings import EscalationSettings
from services.escalation.workflow import ACK_TIMER, PAGE_TIMER, Escalation
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.timers import TimerHandler
from shared.topics import ESCALATIONS

EXTRA = "escalation"


def build_spec(
    config: EscalationSettings | None = None, *, env: Mapping[str, str] | None = None
) -> ServiceSpec:
    """The service; ``config`` None reads ``REVISIT_ESCALATION_*`` when the service starts.

    ``env`` is where notifier secrets named by ``secret_env`` are looked up (the process
    environment unless a test passes its own).
    """

    def escalation(runtime: Runtime) -> Escalation:
        found = runtime.extras.get(EXTRA)
        if not isinstance(found, Escalation):
            found = Escalation(runtime, config or EscalationSettings())
            runtime.extras[EXTRA] = found
        return found

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        handler = handlers.cases_handler(escalation(runtime))
        return [Subscription((ESCALATIONS,), "cases", handler, handlers.CONSUMED)]

    def timer_handlers(runtime: Runtime) -> dict[str, TimerHandler]:
        fire = handlers.timer_handler(escalation(runtime))
        return {ACK_TIMER: fire, PAGE_TIMER: fire}

    async def on_start(runtime: Runtime) -> None:
        await check_every_clinic(runtime)  # production: no urgent page may end in a table
        esc = escalation(runtime)
        http = httpx.AsyncClient(follow_redirects=False)
        factory = NotifierFactory(
            http=http,
            sessions=runtime.sessions,
            env=os.environ if env is None else env,
            timeout=esc.config.delivery_timeout_s,
            policy=esc.config.outbound_policy(),
        )
        dispatcher = PageDispatcher(esc, factory)
        esc.wake_dispatcher = dispatcher.wake
        runtime.extras.update(dispatcher=dispatcher, http=http)
        runtime.loops.add("pager", dispatcher.run)

    async def on_stop(runtime: Runtime) -> None:
        # The pager stopped with the other loops (deliveries in flight drained or leased).
        await runtime.extras["http"].aclose()

    return ServiceSpec(
        name="escalation",
        schema=SCHEMA,
        subscriptions=subscriptions,
        timer_handlers=timer_handlers,
        routers=ROUTERS,
        on_start=on_start,
        on_stop=on_stop,
        title="Revisit escalation",
        description=(
            "Routes clinical questions and concerns to the right person on call, pages them, "
            "and re-pages until someone answers."
        ),
    )


SPEC = build_spec()


def create_app(settings: RevisitSettings, config: EscalationSettings | None = None) -> FastAPI:
    return build_app(build_spec(config) if config is not None else SPEC, settings)
