"""The outside reader's client: one chat-completions call to an OpenAI-compatible endpoint.

Bounded by a timeout; any failure (timeout, refused connection, an error status, an answer that
is not the JSON asked for) returns None, and the local reading stands as it is. The reply's
words are sent to the endpoint and nowhere else; nothing about them is logged.
"""

from __future__ import annotations

import logging

import httpx

from services.messenger.domain.second_reading import reading_from, request_body
from services.messenger.domain.understanding import Reading
from shared.events.messages import ReplyIntent

log = logging.getLogger(__name__)


class OutsideReader:
    def __init__(
        self, base_url: str, model: str, *, api_key: str = "", timeout_s: float = 3.0
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    async def read(
        self, text: str, *, offered_slots: int, opted_out: bool
    ) -> tuple[Reading, ReplyIntent | None] | None:
        body = request_body(
            text, model=self.model, offered_slots=offered_slots, opted_out=opted_out
        )
        try:
            response = await self._client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("outside reader unavailable", extra={"error": type(exc).__name__})
            return None
        found = reading_from(answer)
        if found is None:
            log.warning("outside reader answered without a reading")
        return found

    async def close(self) -> None:
        await self._client.aclose()
