"""Composition root of escalation: settings -> runtime -> consumer, timers, dispatcher, API."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from services.escalation import handlers
from services.escalation.api import ROUTERS
from services.escalation.context import EscalationContext
from services.escalation.dispatch import PageDispatcher
from services.escalation.fallback import check_fallback
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


def build_spec(
    config: EscalationSettings | None = None, *, env: Mapping[str, str] | None = None
) -> ServiceSpec[EscalationContext]:
    """The service; ``config`` None reads ``REVISIT_ESCALATION_*`` when the service starts.

    ``env`` is where notifier secrets named by ``secret_env`` are looked up (the process
    environment unless a test passes its own).
    """

    def context(runtime: Runtime[EscalationContext]) -> EscalationContext:
        esc = Escalation(runtime, config or EscalationSettings())
        return EscalationContext(esc, httpx.AsyncClient(follow_redirects=False))

    def subscriptions(runtime: Runtime[EscalationContext]) -> list[Subscription]:
        handler = handlers.cases_handler(runtime.context.escalation)
        return [Subscription((ESCALATIONS,), "cases", handler, handlers.CONSUMED)]

    def timer_handlers(runtime: Runtime[EscalationContext]) -> dict[str, TimerHandler]:
        fire = handlers.timer_handler(runtime.context.escalation)
        return {ACK_TIMER: fire, PAGE_TIMER: fire}

    async def on_start(runtime: Runtime[EscalationContext]) -> None:
        esc = runtime.context.escalation
        await check_fallback(runtime, esc.config)  # production: a new clinic's pages go there
        await check_every_clinic(runtime)  # production: no urgent page may end in a table
        factory = NotifierFactory(
            http=runtime.context.http,
            sessions=runtime.sessions,
            env=os.environ if env is None else env,
            timeout=esc.config.delivery_timeout_s,
            policy=esc.config.outbound_policy(),
        )
        dispatcher = PageDispatcher(esc, factory)
        esc.wake_dispatcher = dispatcher.wake
        # Stops with the other loops (deliveries in flight drained or leased), before the
        # context closes the HTTP client.
        runtime.loops.add("pager", dispatcher.run)

    return ServiceSpec[EscalationContext](
        name="escalation",
        schema=SCHEMA,
        subscriptions=subscriptions,
        timer_handlers=timer_handlers,
        routers=ROUTERS,
        context=context,
        on_start=on_start,
        title="Revisit escalation",
        description=(
            "Routes clinical questions and concerns to the right person on call, pages them, "
            "and re-pages until someone answers."
        ),
    )


SPEC = build_spec()


def create_app(settings: RevisitSettings, config: EscalationSettings | None = None) -> FastAPI:
    return build_app(build_spec(config) if config is not None else SPEC, settings)
