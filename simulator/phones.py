"""The patients' phones: what the sandbox delivered to them, and their answers in their time.

Every message of the practice is read in order from the messenger's sandbox feed; each
patient's behaviour model (``simulator.patients``) decides whether and what to answer and
after how long, and the answer is played in through ``POST /sandbox/reply`` once the
simulated clock reaches it, exactly as a phone's reply would arrive through a provider. Some
patients also open the tracked booking link a message carries (a GET, as their phone would).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from simulator.model import Practice
from simulator.patients import Conversations, Heard, Inbound, draw, heard, offer_choices

if TYPE_CHECKING:
    from simulator.engine import SimStats

log = logging.getLogger("simulator")
# A tracked booking link (the messenger's "<base>/b/<token>"); some patients open it.
TRACKED_LINK = re.compile(r"https?://\S+/b/[A-Za-z0-9]{8}\b")
CLICK_SHARE = 0.35


@dataclass(order=True)
class _Pending:
    at: datetime
    order: int
    patient_id: str = field(compare=False)
    body: str = field(compare=False)


class Phones:
    def __init__(
        self, practice: Practice, http: httpx.AsyncClient, messenger: str, stats: SimStats
    ) -> None:
        self.practice = practice
        self.clinic_id = practice.clinic.clinic_id
        self.messenger = messenger
        self.stats = stats
        self._http = http
        self._replies: list[_Pending] = []
        self._order = itertools.count()
        self._conversations = Conversations(practice.seed)
        self._cursor = 0
        self._links_seen: Counter[str] = Counter()
        self._to_open: list[str] = []
        self._sent = itertools.count()
        # What was played in, as posted (the fault run replays some, as a provider would).
        self.played: list[dict[str, str]] = []

    @property
    def next_reply_at(self) -> datetime | None:
        return self._replies[0].at if self._replies else None

    async def read(self) -> None:
        while True:
            response = await self._http.get(
                f"{self.messenger}/sandbox/feed",
                params={"clinic_id": self.clinic_id, "after": self._cursor, "limit": 1000},
            )
            response.raise_for_status()
            page = response.json()
            for message in page["messages"]:
                self._on_message(message)
            self._cursor = page["next"]
            await self._open_links()
            if len(page["messages"]) < 1000:
                return

    async def _open_links(self) -> None:
        opening, self._to_open = self._to_open, []
        for url in opening:
            try:
                response = await self._http.get(url, follow_redirects=False)
            except httpx.HTTPError as exc:
                log.warning("a booking link could not be opened: %s", type(exc).__name__)
                continue
            if response.status_code != 302:
                log.warning("a booking link answered HTTP %d", response.status_code)

    def _on_message(self, message: dict[str, object]) -> None:
        patient_key = str(message["patient_key"])
        patient_id = patient_key.split(":", 1)[1]
        patient = self.practice.by_id.get(patient_id)
        sent_at = datetime.fromisoformat(str(message["sent_at"]))
        body = str(message["body"])
        inbound = message["direction"] == "inbound"
        if inbound or patient is None:
            return
        self.stats.messages_received += 1
        for url in TRACKED_LINK.findall(body):
            # Keyed by how many links the patient has seen, not by the random token.
            self._links_seen[patient_id] += 1
            seen = str(self._links_seen[patient_id])
            if draw(self.practice.seed, patient_id, "opens link", seen) < CLICK_SHARE:
                self._to_open.append(url)
        offer = heard(body) == Heard.slot_offer
        received = Inbound(
            message_id=str(message["message_id"]),
            body=body,
            received_at=sent_at,
            is_slot_offer=offer,
            offer_choices=offer_choices(body) if offer else 0,
        )
        reply = self._conversations.answer(patient, patient.journey, received)
        if reply is None:
            return
        at = sent_at + timedelta(minutes=reply.after_minutes)
        heapq.heappush(self._replies, _Pending(at, next(self._order), patient_id, reply.body))

    async def send_replies(self, now: datetime) -> bool:
        """Play in the replies patients wrote by ``now``; whether there were any."""
        sent = False
        while self._replies and self._replies[0].at <= now:
            pending = heapq.heappop(self._replies)
            reply = {
                "clinic_id": self.clinic_id,
                "patient_key": f"{self.clinic_id}:{pending.patient_id}",
                "body": pending.body,
                # The phone's own id for the message: a resend is recognised as the same one.
                "provider_message_id": f"sim-{self.practice.seed}-{next(self._sent)}",
            }
            response = await self._http.post(f"{self.messenger}/sandbox/reply", json=reply)
            if response.status_code != 201:
                log.warning("a patient's reply was refused: HTTP %d", response.status_code)
                continue
            self.stats.replies_sent += 1
            self.played = [*self.played[-199:], reply]
            sent = True
            if pending.body.strip().upper() == "STOP":
                self.stats.stops += 1
        return sent
