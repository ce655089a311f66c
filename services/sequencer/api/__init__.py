"""The sequencer's ops API: sequences and steps, operator actions, preview, workflows and rules,
pilots. Every route needs a staff credential and checks the clinic scope first."""

from fastapi import APIRouter

from services.sequencer.api import config, pilots, previews, sequences

ROUTERS: tuple[APIRouter, ...] = (
    sequences.router,
    previews.router,
    config.router,
    pilots.router,
)
