"""422 answers that say where a request is wrong and why, never what it contained.

FastAPI's default answer repeats each refused value (``input``) and the model's context; a
refused e-mail webhook would send a patient's words back, and a log of the answer would keep
them. Every service answers with location, message and type only (ingest has its own shape).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def validation_problems(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)
