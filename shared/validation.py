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


def data_exception(exc: BaseException) -> bool:
    """PostgreSQL's class 22 (a value out of range, a NUL in text, a bad encoding): the
    request's value cannot be stored or compared, so the caller is told, not a 500."""
    for error in (getattr(exc, "orig", None), exc.__cause__, getattr(exc, "__context__", None)):
        seen = error
        while seen is not None:
            if str(getattr(seen, "sqlstate", "") or "").startswith("22"):
                return True
            seen = seen.__cause__
    return False


async def unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    if not data_exception(exc):
        raise exc
    problem = "a value in the request is out of range or holds a character that cannot be stored"
    # The shape of FastAPI's own 422, which every route declares.
    return JSONResponse(
        {"detail": [{"loc": ["request"], "msg": problem, "type": "value_error"}]},
        status_code=422,
    )
