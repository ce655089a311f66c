"""The console's pages: sign-in, escalations, inbox, a patient's story, segments and words,
outcomes, pilots; and health."""

from fastapi import APIRouter

from services.console.api import (
    auth,
    escalations,
    health,
    inbox,
    outcomes,
    patients,
    pilot_weeks,
    pilots,
    segments,
    words,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    escalations.router,
    inbox.router,
    patients.router,
    segments.router,
    words.router,
    outcomes.router,
    pilots.router,
    pilot_weeks.router,
)
