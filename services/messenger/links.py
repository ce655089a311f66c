"""Tracked booking links: one short link per outreach step, redirecting to the practice's
booking page (its own, or the EHR's), recording the click.

The link is ``<link base>/<token>``: the token is random (8 letters and digits, about 47 bits:
no punctuation a phone's link detection could cut off) and means nothing
outside this table, so the URL carries no name, number, date, service or any id a reader could
tie to a patient. One step always gets the same link (a redelivered command finds it again).
Opening it answers 302 to the practice's booking page; the first GET records the click and
stages ``BookingLinkClicked`` for metrics. A HEAD (what link checkers send) redirects without
counting. A click is interest, not a booking: metrics never makes it the headline.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.practices import DEFAULT_PRACTICE, Practice
from services.messenger.queue import step_message_id
from services.messenger.repository import SCHEMA
from shared.consumer import Delivery
from shared.events import new_event
from shared.events.messages import BookingLinkClicked
from shared.events.outreach import SendStep
from shared.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["booking links"])
TOKEN_LENGTH = 8
_ALPHABET = string.ascii_letters + string.digits
LINK_MAX = 40  # the longest {booking_link} a template's SMS budget allows
Token = Annotated[str, Path(min_length=8, max_length=8, pattern=r"^[A-Za-z0-9]{8}$")]
_BASE = re.compile(r"^https?://[^\s?#]+[^/\s?#]$")


def valid_base(base: str) -> str:
    """The link base as configured, or a ValueError saying what is wrong with it."""
    if not _BASE.match(base):
        raise ValueError("the link base must be an http(s) URL without a query or trailing /")
    if len(base) + 1 + len(new_token()) > LINK_MAX:
        raise ValueError(f"the link base leaves no room: links must fit {LINK_MAX} characters")
    return base


def new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


@dataclass(frozen=True)
class StepLink:
    clinic_id: str
    patient_key: str
    sequence_id: str
    step: int
    target: str  # the practice's booking page


async def links_for(
    session: AsyncSession, base: str, steps: Iterable[StepLink]
) -> dict[tuple[str, int], str]:
    """(sequence, step) -> its tracked link, created on first use."""
    wanted = {(s.sequence_id, s.step): s for s in steps}
    if not wanted:
        return {}
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.booking_links (token, clinic_id, patient_key, sequence_id, "
            "step, target_url, created_at) VALUES (:t, :c, :k, :s, :n, :u, now()) "
            "ON CONFLICT (sequence_id, step) DO NOTHING"
        ),
        [
            {
                "t": new_token(),
                "c": s.clinic_id,
                "k": s.patient_key,
                "s": s.sequence_id,
                "n": s.step,
                "u": s.target,
            }
            for s in wanted.values()
        ],
    )
    rows = await session.execute(
        text(
            f"SELECT sequence_id, step, token FROM {SCHEMA}.booking_links "
            "WHERE sequence_id = ANY(:s)"
        ),
        {"s": sorted({sid for sid, _ in wanted})},
    )
    return {
        (r.sequence_id, r.step): f"{base}/{r.token}"
        for r in rows
        if (r.sequence_id, r.step) in wanted
    }


async def step_links(
    session: AsyncSession,
    base: str,
    commands: Sequence[tuple[Delivery, SendStep]],
    practices: Mapping[str, Practice],
) -> dict[tuple[str, int], str]:
    """The tracked link of each command's step, for practices with a booking page; none when
    the messenger has no link base (messages then carry the booking page itself)."""
    if not base:
        return {}
    steps = []
    for d, cmd in commands:
        clinic = d.envelope.clinic_id
        target = practices.get(clinic, DEFAULT_PRACTICE).booking_url
        if target:
            steps.append(
                StepLink(clinic, d.envelope.patient_key, cmd.sequence_id, cmd.step, target)
            )
    return await links_for(session, base, steps)


async def _follow(request: Request, token: str, *, count: bool) -> Response:
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session, session.begin():
        row = (
            await session.execute(
                text(
                    f"UPDATE {SCHEMA}.booking_links SET clicks = clicks + :one, "
                    "first_clicked_at = CASE WHEN :one = 1 THEN coalesce(first_clicked_at, "
                    "CAST(:now AS timestamptz)) ELSE first_clicked_at END "
                    "WHERE token = :t RETURNING clinic_id, patient_key, sequence_id, step, "
                    "target_url, clicks"
                ),
                {"t": token, "one": 1 if count else 0, "now": runtime.clock.now()},
            )
        ).first()
        if row is None:
            raise HTTPException(404, "this link is not known here; please call the practice")
        if count and row.clicks == 1:
            clicked = BookingLinkClicked(
                sequence_id=row.sequence_id,
                step=row.step,
                message_id=step_message_id(f"{row.sequence_id}:{row.step}"),
            )
            await runtime.outbox.stage(
                session,
                [
                    new_event(
                        clicked,
                        clinic_id=row.clinic_id,
                        patient_key=row.patient_key,
                        occurred_at=runtime.clock.now(),
                    )
                ],
            )
    return Response(
        status_code=302,
        headers={
            "Location": row.target_url,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/b/{token}", summary="A tracked booking link: records the click, then redirects")
async def follow(request: Request, token: Token) -> Response:
    return await _follow(request, token, count=True)


@router.head("/b/{token}", include_in_schema=False)
async def peek(request: Request, token: Token) -> Response:
    return await _follow(request, token, count=False)
