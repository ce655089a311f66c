"""The escalation ops API: the case queue and actions, clinic set-up, the sandbox pager."""

from fastapi import APIRouter

from services.escalation.api import cases, clinics, notes, patient_cases, rotations, sandbox

ROUTERS: tuple[APIRouter, ...] = (
    cases.router,
    notes.router,
    patient_cases.router,
    rotations.router,
    clinics.router,
    sandbox.router,
)
