"""Composition root of escalation."""

from __future__ import annotations

from fastapi import FastAPI

from services.escalation import api, handlers
from services.escalation.repository import SCHEMA
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import ESCALATIONS


def subscriptions(runtime: Runtime) -> list[Subscription]:
    return [Subscription((ESCALATIONS,), "cases", handlers.cases_handler(runtime))]


SPEC = ServiceSpec(
    name="escalation",
    schema=SCHEMA,
    subscriptions=subscriptions,
    routers=(api.router,),
    title="Revisit escalation",
    description="Routes clinical questions and concerns to the right person on call.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
