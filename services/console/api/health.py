"""Liveness and readiness. The console owns no database or broker; it is ready when it can
sign people in (a way to sign in; for the dev sign-in, a way to issue a dev credential)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.console.api.deps import ConsoleDep

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(console: ConsoleDep) -> JSONResponse:
    problems = []
    if console.settings.dev_sign_in and console.tokens is None:
        problems.append("the dev sign-in has no staff-token secret (REVISIT_JWT_SECRET)")
    if not console.settings.dev_sign_in and console.oidc is None:
        problems.append("no way to sign in (REVISIT_CONSOLE_OIDC_ISSUER)")
    if problems:
        return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})
