"""One error shape for every service's API, and the responses a route declares with it.

Every refusal and every failure answers with an :class:`ErrorBody`::

    {"error": "not_found", "detail": "no such pilot in the clinics this credential covers",
     "where": null, "issues": []}

``error`` is a stable code a program can branch on, ``detail`` one sentence for a person,
``where`` the field path of the (first) problem when there is one, and ``issues`` every problem
of a request that failed validation (FastAPI's 422 detail, as field paths and messages). Nothing
in it repeats a submitted value: request bodies carry phone numbers and names, and error
responses end up in logs and support tickets. A 500 says only that something unexpected happened
and gives the trace id to look it up with; the exception goes to the log, scrubbed.

A route raises ``HTTPException(404, "no such case")`` as before, or :class:`Refusal` when it has
a more precise code or a field path (``Refusal(409, "...", error="opted_out")``).
:func:`install_error_handlers` (``build_app`` calls it) turns both into an ``ErrorBody``, and
every route lists what it may answer with ``responses=error_responses(401, 403, 404)`` (or the
whole :data:`ERROR_RESPONSES`) so its OpenAPI page says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
}
DESCRIPTIONS: Mapping[int, str] = {
    400: "not readable at all",
    401: "missing, malformed, expired or revoked credential",
    403: "role too low, or the clinic is outside the credential's scope",
    404: "no such resource (or not in the clinics this credential covers)",
    409: "conflicts with the current state: the detail says with what",
    413: "body too large",
    422: "invalid request: names each problem and where it is",
    500: "unexpected error: the detail gives the trace id to look it up",
    503: "not available right now (starting, or a dependency is down): try again",
}


class Issue(BaseModel):
    """One problem with a request: where it is, and what is wrong (never the value)."""

    where: str = Field(description="field path, e.g. 'body.events[1].payload.start'")
    problem: str


class ErrorBody(BaseModel):
    """What every service answers when it refuses a request or fails."""

    error: str = Field(description="stable code: not_found, conflict, invalid_request ...")
    detail: str = Field(description="one sentence saying what is wrong, for a person")
    where: str | None = Field(default=None, description="field path of the (first) problem")
    issues: list[Issue] = Field(default_factory=list, description="every validation problem")


class Refusal(StarletteHTTPException):
    """An ``HTTPException`` with a precise code and the field it is about."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        error: str | None = None,
        where: str | None = None,
        issues: Sequence[Issue] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail, dict(headers) if headers else None)
        self.error = error or code_of(status_code)
        self.where = where
        self.issues = list(issues)


def code_of(status: int) -> str:
    return CODES.get(status, f"http_{status}")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with an ``ErrorBody``."""
    return {
        s: {"model": ErrorBody, "description": DESCRIPTIONS.get(s, code_of(s))} for s in statuses
    }


# What most routes may answer besides success; narrow it with error_responses(...) when a route
# cannot answer some of these.
ERROR_RESPONSES = error_responses(401, 403, 404, 409, 422)


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "events", 1, "start")`` -> ``"body.events[1].start"``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(request)"


def _message(msg: str) -> str:
    # pydantic prefixes a validator's own sentence with its error class name.
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_issues(errors: Sequence[Mapping[str, Any]], limit: int = 20) -> list[Issue]:
    return [
        Issue(where=field_path(e.get("loc", ())), problem=_message(str(e.get("msg", ""))))
        for e in errors[:limit]
    ]


def error_response(
    status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if isinstance(exc, Refusal):
        body = ErrorBody(error=exc.error, detail=exc.detail, where=exc.where, issues=exc.issues)
        return error_response(exc.status_code, body, headers)
    if not isinstance(exc.detail, str):
        # A structured detail (a dict or a list) from a route not yet converted to Refusal: kept
        # as it is so its callers keep working, inside the envelope.
        content = {"error": code_of(exc.status_code), "detail": exc.detail, "where": None}
        return JSONResponse(content, status_code=exc.status_code, headers=headers)
    body = ErrorBody(error=code_of(exc.status_code), detail=exc.detail)
    return error_response(exc.status_code, body, headers)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = validation_issues(exc.errors())
    first = issues[0] if issues else Issue(where="(request)", problem="not valid")
    more = len(exc.errors()) - 1
    detail = f"{first.where}: {first.problem}" + (f" (and {more} more)" if more > 0 else "")
    body = ErrorBody(error=code_of(422), detail=detail, where=first.where, issues=issues)
    return error_response(422, body)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    from shared.telemetry import current_trace_id

    trace = current_trace_id()
    route = getattr(request.scope.get("route"), "path", "(unrouted)")
    log.error(
        "unexpected error in a request",
        extra={"route": route, "method": request.method, "error": type(exc).__name__},
        exc_info=exc,
    )
    detail = "an unexpected error; it is logged" + (f" under trace {trace}" if trace else "")
    return error_response(500, ErrorBody(error=code_of(500), detail=detail))


def install_error_handlers(app: FastAPI) -> None:
    """Every HTTP error, validation failure and unexpected exception as an ``ErrorBody``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
