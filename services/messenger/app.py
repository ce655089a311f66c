"""Composition root of the messenger: settings -> providers, scheduling, workers -> app."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import (
    api,
    api_freed,
    api_held,
    api_inbox,
    api_previews,
    api_sandbox,
    api_templates,
    freed_offers,
    freed_slots,
    handlers,
    held,
    links,
    sending,
    template_store,
    webhooks,
)
from services.messenger.body_retention import body_job
from services.messenger.booking import BookingWork
from services.messenger.booking_timers import booking_timers
from services.messenger.context import MessengerContext
from services.messenger.dispatcher import Dispatcher
from services.messenger.domain.phrases import PhraseBook
from services.messenger.ehr import api as ehr_api
from services.messenger.ehr.chart import ChartWriter
from services.messenger.ehr.routing import ClinicScheduling
from services.messenger.providers.base import MessageProvider
from services.messenger.providers.sandbox import SandboxProvider
from services.messenger.providers.smtp import SmtpProvider
from services.messenger.providers.twilio import TwilioProvider
from services.messenger.replies.reader import OutsideReader
from services.messenger.repository import SCHEMA
from services.messenger.scheduling.base import SchedulingAdapter
from services.messenger.scheduling.fhir import FhirScheduling
from services.messenger.scheduling.sandbox import SandboxScheduling
from services.messenger.second_reading import SecondReading
from services.messenger.settings import MessengerSettings
from shared.config import RevisitSettings
from shared.consumer import Delivery, Subscription
from shared.events.common import Channel
from shared.runtime import Runtime, ServiceSpec, build_app
from shared.timers import TimerAction
from shared.topics import COMMANDS, EHR_EVENTS, ELIGIBILITY, ESCALATIONS

CONTACT_EVENTS = frozenset({"PatientUpserted", "ConsentChanged"})
ESCALATION_EVENTS = frozenset({"EscalationRaised", "EscalationResolved"})
CONTEXT = "messenger"


def build_context(runtime: Runtime, settings: MessengerSettings) -> MessengerContext:
    """Providers and the scheduling adapter the settings name (the sandbox ones always exist)."""
    providers: dict[str, MessageProvider] = {
        "sandbox": SandboxProvider(runtime.sessions, runtime.clock)
    }
    public = settings.public_url.rstrip("/")
    if settings.sms_provider == "twilio":
        providers["twilio"] = TwilioProvider(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            api_base=settings.twilio_api_base,
            status_callback=f"{public}/webhooks/twilio/status" if public else "",
            timeout_s=settings.provider_timeout_s,
        )
    if settings.email_provider == "smtp":
        providers["smtp"] = SmtpProvider(
            host=settings.smtp_host,
            port=settings.smtp_port,
            from_address=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout_s=settings.smtp_timeout_s,
        )
    fallback: SchedulingAdapter
    if settings.scheduling == "fhir":
        fallback = FhirScheduling(settings.fhir_base_url, token=settings.fhir_token)
    else:
        fallback = SandboxScheduling(runtime.sessions, runtime.settings.revisit_default_time_zone)
    # A clinic with an EHR connection books in its own EHR; the others use the fallback.
    scheduling = ClinicScheduling(
        fallback, runtime.sessions, runtime.clock.now, os.environ, timeout_s=settings.ehr_timeout_s
    )
    reader = None
    if settings.reply_reader_url:
        reader = OutsideReader(
            settings.reply_reader_url,
            settings.reply_reader_model,
            api_key=settings.reply_reader_api_key,
            timeout_s=settings.reply_reader_timeout_s,
        )
    phrases = None
    if settings.reply_phrases:
        phrases = PhraseBook.parse(json.loads(Path(settings.reply_phrases).read_text("utf-8")))
    return MessengerContext(
        settings=settings,
        providers=providers,
        scheduling=scheduling,
        routes={Channel.sms: settings.sms_provider, Channel.email: settings.email_provider},
        reader=reader,
        phrases=phrases,
    )


def make_spec(messenger_settings: MessengerSettings | None = None) -> ServiceSpec:
    """The messenger's spec; settings are read from the environment at start-up if not given
    (then the sandbox routes are left out: only a spec built with its settings mounts them)."""

    def context(runtime: Runtime) -> MessengerContext:
        if CONTEXT not in runtime.extras:
            settings = messenger_settings or MessengerSettings()
            runtime.extras[CONTEXT] = build_context(runtime, settings)
        ctx: MessengerContext = runtime.extras[CONTEXT]
        return ctx

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        ctx = context(runtime)
        return [
            # The messenger owns contacts and consent, so it reads them from the EHR stream too.
            Subscription(
                (EHR_EVENTS,), "contacts", handlers.contacts_handler(runtime), CONTACT_EVENTS
            ),
            Subscription((COMMANDS,), "commands", handlers.commands_handler(runtime, ctx)),
            # Freed slots: cancellations and bookings; who is in a segment for which service.
            Subscription(
                (EHR_EVENTS,),
                "freed-slots",
                freed_slots.ehr_handler(runtime, ctx),
                freed_slots.EHR_TYPES,
            ),
            Subscription(
                (ELIGIBILITY,),
                "segment-members",
                freed_slots.segment_handler(runtime),
                freed_slots.SEGMENT_TYPES,
            ),
            Subscription(
                (ESCALATIONS,),
                "escalations",
                handlers.escalations_handler(runtime),
                ESCALATION_EVENTS,
            ),
        ]

    def timer_handlers(runtime: Runtime) -> Mapping[str, TimerAction]:
        ctx = context(runtime)

        async def plan(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
            await sending.plan_sends(runtime, ctx, session, deliveries)

        return {
            **booking_timers(BookingWork(runtime, ctx)),
            held.HELD_TIMER: held.timer_handler(plan),
            **SecondReading(runtime, ctx).handlers(),
            freed_slots.FIND: freed_slots.FindFreedSlot(runtime, ctx),
            freed_offers.NEXT: freed_offers.next_batch_handler(runtime, ctx),
        }

    async def on_start(runtime: Runtime) -> None:
        ctx = context(runtime)
        async with runtime.sessions() as session, session.begin():
            await template_store.seed_default_library(session, runtime.clock.now())
        dispatcher = Dispatcher(runtime, ctx)
        runtime.extras["dispatcher"] = dispatcher
        runtime.loops.add("dispatcher", dispatcher.run)
        if isinstance(ctx.scheduling, ClinicScheduling):
            runtime.loops.add("chart-writer", ChartWriter(runtime, ctx.scheduling).run)
        assert runtime.retention is not None  # run_service builds it before on_start
        runtime.retention.add("message_bodies", body_job(runtime))

    async def on_stop(runtime: Runtime) -> None:
        # The dispatcher and the chart writer have stopped with the other loops by now: the
        # providers and the EHR clients can close.
        ctx: MessengerContext | None = runtime.extras.get(CONTEXT)
        if ctx is not None:
            for provider in ctx.providers.values():
                with contextlib.suppress(Exception):
                    await provider.close()
            with contextlib.suppress(Exception):
                await ctx.scheduling.close()
            if ctx.reader is not None:
                with contextlib.suppress(Exception):
                    await ctx.reader.close()

    return ServiceSpec(
        name="messenger",
        schema=SCHEMA,
        subscriptions=subscriptions,
        timer_handlers=timer_handlers,
        routers=(
            api.router,
            *([api_sandbox.router] if sandbox_configured(messenger_settings) else []),
            api_templates.router,
            api_previews.router,
            api_held.router,
            api_freed.router,
            webhooks.router,
            ehr_api.router,
            api_inbox.router,
            links.router,
        ),
        on_start=on_start,
        on_stop=on_stop,
        # Twilio's webhooks are open to the internet and read before their signature is
        # checked: a reply or a status report is a few kilobytes.
        body_limits={"/webhooks/twilio/": webhooks.TWILIO_MAX_BODY_BYTES},
        title="Revisit messenger",
        description="Approved words, real providers, two-way conversations, consent at send time.",
    )


def sandbox_configured(settings: MessengerSettings | None) -> bool:
    """The sandbox's act-as-the-patient routes exist only while it is the configured provider."""
    # Every channel: with real SMS and a sandbox e-mail, a sandbox reply could still record a
    # patient's consent words as theirs.
    return settings is not None and settings.sms_provider == settings.email_provider == "sandbox"


SPEC = make_spec()


def create_app(
    settings: RevisitSettings, messenger_settings: MessengerSettings | None = None
) -> FastAPI:
    return build_app(make_spec(messenger_settings or MessengerSettings()), settings)
