"""The escalation ops API: the case queue and actions, clinic set-up, the sandbox pager."""

from fastapi import APIRouter

from services.escalation.api import cases, clinics, notes, rotations, sandbox

ROUTERS: tuple[APIRouter, ...] = (
    cases.router,
    notes.router,
    rotations.router,
    clinics.router,
    sandbox.router,
)
