"""SendStep -> a queued message or a MessageBlocked, inside the consumer's transaction.

No provider is called here. The step is checked against what is true now (with the clinic's
outreach policy the command carries), rendered from its approved template with the facts the
command documents, its final text linted again, claimed once per (sequence, step) and written
to the durable queue; the transaction commits, and only then does the dispatcher hand it to a
provider. Words that state a fact the command does not carry, or that break a lint rule once
filled in, are never sent: the step is blocked with that reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import (
    conversations,
    held,
    links,
    queue,
    repository,
    template_store,
    waitlist_store,
)
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain import rewriter
from services.messenger.domain.checks import (
    WEEK,
    ContactCard,
    SendContext,
    SendWindow,
    choose_channel,
)
from services.messenger.domain.templates import (
    Rendered,
    Template,
    parse_template_key,
    select_template,
)
from services.messenger.domain.words import PracticeFacts, Refused, compose, step_values
from services.messenger.practices import Practice
from shared.consumer import Delivery
from shared.events.common import Channel
from shared.events.messages import MessageBlocked
from shared.events.outreach import SendStep
from shared.runtime import Runtime

log = logging.getLogger(__name__)
REWRITE_TIMEOUT_S = 2.0
YIELD_EVERY = 50

ApprovedTemplates = dict[tuple[str | None, str, int, str], list[Template]]


def practice_facts(practice: Practice, default_zone: str) -> PracticeFacts:
    return PracticeFacts(
        practice.name, practice.phone, practice.booking_url, practice.time_zone or default_zone
    )


def template_values(
    cmd: SendStep,
    card: ContactCard | None,
    practice: Practice,
    provider_name: str | None,
    language: str,
    booking_link: str | None = None,
    *,
    now: datetime,
    default_zone: str,
) -> dict[str, str | None]:
    values = step_values(
        cmd,
        first_name=card.given_name if card else None,
        practice=practice_facts(practice, default_zone),
        provider_name=provider_name,
        language=language,
        now=now,
    )
    if booking_link:
        # The step's tracked link (links.py) when there is one, else the booking page itself.
        values["booking_link"] = booking_link
    return values


def final_words(
    ctx: MessengerContext, template: Template, cmd: SendStep, values: dict[str, str | None]
) -> Rendered | Refused:
    return compose(
        template,
        cmd,
        values,
        sms_max_chars=ctx.settings.sms_max_chars,
        first_contact_max_chars=ctx.settings.sms_first_max_chars,
    )


def find_template(
    approved: ApprovedTemplates,
    clinic_id: str,
    cmd: SendStep,
    channel: Channel,
    language: str,
) -> Template | None:
    parsed = parse_template_key(cmd.template_key)
    if parsed is None:
        return None
    workflow, step = parsed
    candidates = approved.get((clinic_id, workflow, step, channel.value)) or approved.get(
        (None, workflow, step, channel.value), []
    )
    return select_template(
        candidates, language=language, tone=cmd.tone, urgency=cmd.clinical_urgency
    )


async def plan_sends(
    runtime: Runtime,
    ctx: MessengerContext,
    session: AsyncSession,
    deliveries: Sequence[Delivery],
) -> None:
    """Decide every SendStep of a batch with a handful of queries, then queue or block."""
    now = runtime.clock.now()
    commands = [(d, d.envelope.payload) for d in deliveries]
    patient_keys = [d.envelope.patient_key for d, _ in commands]
    clinics = {d.envelope.clinic_id for d, _ in commands}
    cancelled = await repository.cancelled_sequences(session, [c.sequence_id for _, c in commands])
    cards = await repository.contact_cards(session, patient_keys)
    # Steps whose contact card or consent has not arrived yet wait for it (bounded).
    wait = timedelta(seconds=ctx.settings.prerequisite_wait_seconds)
    waited = await held.sort_out(runtime, session, commands, cards, cancelled, wait, now)
    commands, cards = waited.ready, waited.cards
    practices = await practices_store.practices(session, clinics)
    names = await practices_store.provider_names(
        session, [(d.envelope.clinic_id, c.provider_id) for d, c in commands]
    )
    workflows = {p[0] for _, c in commands if (p := parse_template_key(c.template_key))}
    approved = await template_store.approved_for(session, clinics, workflows)
    recent = await queue.recent_outreach(session, patient_keys, now - WEEK)
    escalated = await repository.with_open_escalations(session, patient_keys)
    tracked = await links.step_links(session, ctx.settings.link_base_url, commands, practices)

    claims: list[tuple[str, int, str, str]] = []
    planned: list[queue.QueuedMessage] = []
    contexts: dict[str, conversations.StepContext] = {}
    blocked: list[tuple[Delivery, MessageBlocked]] = []
    seen: set[tuple[str, int]] = set()
    for index, (d, cmd) in enumerate(commands):
        if index % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)  # a big batch must not hold up webhook replies in this loop
        if cmd.sequence_id in cancelled or (cmd.sequence_id, cmd.step) in seen:
            continue  # a stopped sequence sends nothing; one batch may repeat a command
        seen.add((cmd.sequence_id, cmd.step))
        clinic, patient = d.envelope.clinic_id, d.envelope.patient_key
        card = cards.get(patient)
        language = card.lang if card else "en"
        history = recent.setdefault(patient, [])

        def ctx_for(
            channel: Channel,
            clinic: str = clinic,
            cmd: SendStep = cmd,
            history: list[datetime] = history,
            patient: str = patient,
            language: str = language,
        ) -> SendContext:
            return SendContext(
                escalation_open=patient in escalated,
                template_available=find_template(approved, clinic, cmd, channel, language)
                is not None,
                recent_sends=tuple(history),
            )

        channel, is_fallback, refused = choose_channel(card, cmd, now, ctx_for)
        if refused is not None or card is None:
            reason = refused.reason if refused else None
            assert reason is not None
            blocked.append(
                (
                    d,
                    MessageBlocked(
                        sequence_id=cmd.sequence_id,
                        step=cmd.step,
                        channel=channel,
                        reason=reason,
                        retry_after=refused.retry_after if refused else None,
                    ),
                )
            )
            continue
        template = find_template(approved, clinic, cmd, channel, language)
        assert template is not None  # checked above
        practice = practices.get(clinic, practices_store.DEFAULT_PRACTICE)
        values = template_values(
            cmd,
            card,
            practice,
            names.get((clinic, cmd.provider_id or "")),
            template.language,
            tracked.get((cmd.sequence_id, cmd.step)),
            now=now,
            default_zone=runtime.settings.revisit_default_time_zone,
        )
        words = final_words(ctx, template, cmd, values)
        if isinstance(words, Refused):
            # Variable and rule names only: never the words, never the patient's details.
            log.warning(
                "step words refused",
                extra={"reason": words.reason.value, "detail": words.detail},
            )
            blocked.append(
                (
                    d,
                    MessageBlocked(
                        sequence_id=cmd.sequence_id,
                        step=cmd.step,
                        channel=channel,
                        reason=words.reason,
                    ),
                )
            )
            continue
        rendered = words
        body = await _maybe_rewrite(ctx, template, rendered.body, values)
        address = card.address(channel)
        assert address is not None
        provider = ctx.provider_for(channel)
        message_id = queue.step_message_id(cmd.idempotency_key)
        claims.append((cmd.sequence_id, cmd.step, message_id, channel.value))
        planned.append(
            queue.QueuedMessage(
                message_id=message_id,
                idempotency_key=cmd.idempotency_key,
                clinic_id=clinic,
                patient_key=patient,
                kind="step",
                channel=channel.value,
                provider=provider.name,
                sender=provider.sender,
                address=address,
                body=body,
                subject=rendered.subject,
                created_at=now,
                sequence_id=cmd.sequence_id,
                step=cmd.step,
                is_fallback=is_fallback,
                template_key=cmd.template_key,
                template_id=template.template_id,
                purpose=cmd.purpose.value,
                expires_at=cmd.expires_at,
                trace_headers=dict(d.trace_headers),
                send_window=SendWindow.of(cmd).to_json(),
                correlation_id=d.envelope.correlation_id,
                causation_id=d.envelope.event_id,
            )
        )
        contexts[message_id] = conversations.StepContext(
            clinic,
            patient,
            cmd.sequence_id,
            message_id,
            cmd.service_line.value,
            cmd.provider_id,
            cmd.location_id,
        )
        history.append(now)  # two steps for one patient in one batch still meet the caps

    claimed = await queue.claim_steps(session, claims, now)
    queued = [m for m in planned if (m.sequence_id, m.step) in claimed]
    await queue.enqueue(session, queued)
    await conversations.remember_steps(session, [contexts[m.message_id] for m in queued])
    # The policy freed-slot offers are held to: the one the sequencer put in the latest steps.
    await waitlist_store.remember_policies(
        session, {d.envelope.clinic_id: c.policy for d, c in commands}, now
    )
    await runtime.outbox.stage_batch(
        session,
        [(d.envelope.caused(event, occurred_at=now), d.trace_headers) for d, event in blocked],
    )
    reasons = {(e.sequence_id, e.step): e.reason.value for _, e in blocked}
    await held.settle(session, waited.gave_up, reasons, wait, now)


async def _maybe_rewrite(
    ctx: MessengerContext, template: Template, approved_text: str, values: dict[str, str | None]
) -> str:
    if ctx.rewriter is None:
        return approved_text
    try:
        candidate = await asyncio.wait_for(
            ctx.rewriter.rephrase(
                approved_text,
                language=template.language,
                tone=template.tone,
                channel=template.channel,
            ),
            timeout=REWRITE_TIMEOUT_S,
        )
    except Exception as exc:  # a rewriter that fails or is slow: the approved text goes out
        log.warning(
            "rewriter failed; sending the approved text", extra={"error": type(exc).__name__}
        )
        return approved_text
    rendered_values = [v for v in values.values() if v and v in approved_text]
    text, _used = rewriter.accept(
        template,
        approved_text,
        candidate,
        rendered_values,
        sms_max_chars=ctx.settings.sms_max_chars,
    )
    return text
