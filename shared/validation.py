"""A value PostgreSQL cannot store (out of range, a NUL in text) is the caller's mistake: a 422
in the ErrorBody every route declares, saying where and why, never what it contained.
(Validation failures get the same shape from shared/errors.py.)
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.errors import ErrorBody, Issue, code_of, error_response


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
    # The ErrorBody every route declares for 422 (shared/errors.py).
    issue = Issue(where="(request)", problem=problem)
    body = ErrorBody(error=code_of(422), detail=problem, where=issue.where, issues=[issue])
    return error_response(422, body)
