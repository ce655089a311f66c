"""The exact words a step would send to a patient, and whether and why it would go, sent nothing.

The sequencer's preview (and through it the segment preview) asks here rather than render for
itself: only the messenger knows what makes the words exact (the clinic's approved template
versions, the patient's language and name, the provider's display name, the practice's phone and
booking page). It runs the same choices as sending (``sending.py``): the channel, the template,
the values, the strict render and the final lint, and the same checks at the moment given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import practices as practices_store
from services.messenger import queue, repository, template_store
from services.messenger.context import MessengerContext
from services.messenger.domain.checks import WEEK, SendContext, choose_channel
from services.messenger.domain.templates import parse_template_key
from services.messenger.domain.words import Refused
from services.messenger.sending import final_words, find_template, template_values
from shared.events.common import Channel
from shared.events.outreach import SendStep
from shared.runtime import Runtime


async def preview_steps(
    runtime: Runtime,
    ctx: MessengerContext,
    session: AsyncSession,
    items: Sequence[tuple[str, datetime, SendStep]],
) -> list[dict[str, Any]]:
    """For each (patient key, moment, command): the words, and whether they would go then."""
    keys = [k for k, _, _ in items]
    clinics = {k.split(":", 1)[0] for k in keys}
    cards = await repository.contact_cards(session, keys)
    practices = await practices_store.practices(session, clinics)
    names = await practices_store.provider_names(
        session, [(k.split(":", 1)[0], c.provider_id) for k, _, c in items]
    )
    workflows = {p[0] for _, _, c in items if (p := parse_template_key(c.template_key))}
    approved = await template_store.approved_for(session, clinics, workflows)
    now = runtime.clock.now()
    recent = await queue.recent_outreach(session, keys, now - WEEK)
    escalated = await repository.with_open_escalations(session, keys)
    default_zone = runtime.settings.revisit_default_time_zone
    out: list[dict[str, Any]] = []
    for patient_key, at, cmd in items:
        clinic = patient_key.split(":", 1)[0]
        card = cards.get(patient_key)
        language = card.lang if card else "en"

        def ctx_for(
            channel: Channel,
            cmd: SendStep = cmd,
            clinic: str = clinic,
            language: str = language,
            patient_key: str = patient_key,
        ) -> SendContext:
            return SendContext(
                escalation_open=patient_key in escalated,
                template_available=find_template(approved, clinic, cmd, channel, language)
                is not None,
                recent_sends=tuple(recent.get(patient_key, ())),
            )

        channel, fallback, blocked = choose_channel(card, cmd, at, ctx_for)
        item: dict[str, Any] = {
            "patient_key": patient_key,
            "sequence_id": cmd.sequence_id,
            "step": cmd.step,
            "at": at.isoformat(),
            "channel": channel.value,
            "is_fallback": fallback,
            "language": language,
            "would_send": blocked is None,
            "blocked": (
                {
                    "reason": blocked.reason.value,
                    "retry_after": blocked.retry_after.isoformat() if blocked.retry_after else None,
                }
                if blocked
                else None
            ),
            "template": None,
            "subject": None,
            "body": None,
        }
        template = find_template(approved, clinic, cmd, channel, language)
        if template is not None:
            practice = practices.get(clinic, practices_store.DEFAULT_PRACTICE)
            values = template_values(
                cmd,
                card,
                practice,
                names.get((clinic, cmd.provider_id or "")),
                template.language,
                now=at,
                default_zone=default_zone,
            )
            words = final_words(ctx, template, cmd, values)
            item["template"] = {
                "template_id": template.template_id,
                "version": template.version,
                "tone": template.tone.value,
                "language": template.language,
            }
            if isinstance(words, Refused):
                item["would_send"] = False
                item["blocked"] = item["blocked"] or {
                    "reason": words.reason.value,
                    "retry_after": None,
                }
                item["refused"] = words.detail
            else:
                item["subject"], item["body"] = words.subject, words.body
        out.append(item)
    return out
