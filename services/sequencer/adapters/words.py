"""The exact words of previewed steps, from the messenger's ``POST /previews``.

The sequencer never renders words itself: the messenger holds the approved template versions,
the patient's language and name and the practice's details, so only it can say what a patient
would read. The caller's own credential is forwarded (the messenger checks the clinic scope
again); nothing is sent to any patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from shared.events.outreach import SendStep

TIMEOUT_S = 10.0


class WordsUnavailable(Exception):
    """The messenger could not say the words (PHI-free reason)."""


async def words_for(
    base_url: str, authorization: str, items: Sequence[tuple[str, datetime, SendStep]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """(sequence id, step) -> the messenger's preview of that command at that moment."""
    if not items:
        return {}
    body = {
        "items": [
            {"patient_key": key, "at": at.isoformat(), "command": cmd.model_dump(mode="json")}
            for key, at, cmd in items
        ]
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.post(
                f"{base_url.rstrip('/')}/previews",
                json=body,
                headers={"Authorization": authorization},
            )
    except httpx.HTTPError as exc:
        raise WordsUnavailable(
            f"the messenger could not be reached ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        raise WordsUnavailable(f"the messenger answered {response.status_code}")
    found: list[dict[str, Any]] = response.json().get("items", [])
    return {(str(i["sequence_id"]), int(i["step"])): i for i in found}
