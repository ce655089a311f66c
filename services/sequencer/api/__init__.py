"""The sequencer's ops API: sequences and steps, operator actions, preview, workflows and rules,
pilots. Every route needs a staff credential and checks the clinic scope first."""

from fastapi import APIRouter

from services.sequencer.api import config, pilot_review, pilots, previews, sequences, staff_actions

ROUTERS: tuple[APIRouter, ...] = (
    sequences.router,
    staff_actions.router,
    previews.router,
    config.router,
    pilots.router,
    pilot_review.router,
)
