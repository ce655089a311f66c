"""Reading several services at once for one page: what is essential fails the page with the
service's refusal; what is beside the point shows as "unavailable" instead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.console.adapters.base import ApiError

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    value: T | None
    missing: str | None = None  # why it is not shown (the service's words)
    refusal: ApiError | None = None

    def essential(self) -> T:
        """The value of a part the page cannot do without: its refusal fails the page (read
        beside the others, so an essential call costs no round of its own)."""
        if self.refusal is not None:
            raise self.refusal
        assert self.value is not None
        return self.value


async def part(call: Awaitable[T]) -> Part[T]:
    try:
        return Part(await call)
    except ApiError as exc:
        if exc.status == 401:
            raise  # the person's credential ran out: they sign in again
        return Part(None, f"{exc.service}: {exc.words}", exc)


async def parts(*calls: Awaitable[Any]) -> list[Part[Any]]:
    return list(await asyncio.gather(*(part(c) for c in calls)))
