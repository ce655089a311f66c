"""Composition root of the messenger."""

from __future__ import annotations

from fastapi import FastAPI

from services.messenger import api, handlers
from services.messenger.providers.sandbox import SandboxProvider
from services.messenger.repository import SCHEMA
from shared.config import RevisitSettings
from shared.consumer import Subscription
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.topics import COMMANDS, EHR_EVENTS

CONTACT_EVENTS = frozenset({"PatientUpserted", "ConsentChanged"})


def subscriptions(runtime: Runtime) -> list[Subscription]:
    provider = SandboxProvider(runtime.sessions)
    return [
        # The messenger owns contacts and consent, so it reads them from the EHR stream too.
        Subscription((EHR_EVENTS,), "contacts", handlers.contacts_handler(runtime), CONTACT_EVENTS),
        Subscription((COMMANDS,), "commands", handlers.commands_handler(runtime, provider)),
    ]


SPEC = ServiceSpec(
    name="messenger",
    schema=SCHEMA,
    subscriptions=subscriptions,
    routers=(api.router,),
    title="Revisit messenger",
    description="Approved words, real providers, two-way conversations, consent at send time.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
