"""What ``bench.pipeline`` observes and how it reports it.

- ``Outcomes``: per patient, when the eligibility and the sent (or blocked) message were
  published, from the record timestamps (the publishing relay's wall clock) of
  ``recall.eligibility.v1`` and ``outreach.messages.v1``, read by a group-less consumer;
- ``LagSeries``: consumer lag per group over time (the metrics service's own sampler);
- ``percentile``, ``parse_figures`` and the figure names, so that scripts (and the tests) read
  the output the same way the bench writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.topics import ELIGIBILITY, MESSAGES

# Refusals that are "not now" rather than "not at all": the sequencer plans the step again.
DEFERRED = frozenset({"quiet_hours", "frequency_cap", "escalation_open"})
FIGURE = re.compile(
    r"^(?P<name>[a-z0-9_]+): (?P<value>-?[\d.]+)(?: (?P<unit>[^(]+?))? \((?P<note>.*)\)$"
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    note: str


def parse_figures(text: str) -> dict[str, Figure]:
    """Every ``NAME: VALUE UNIT (NOTE)`` line of a bench's output, by name."""
    found: dict[str, Figure] = {}
    for line in text.splitlines():
        match = FIGURE.match(line.strip())
        if match:
            found[match["name"]] = Figure(
                match["name"], float(match["value"]), (match["unit"] or "").strip(), match["note"]
            )
    return found


@dataclass
class PatientOutcome:
    eligible_at: float | None = None  # wall seconds (record timestamp)
    sent_at: float | None = None
    blocked: list[str] = field(default_factory=list)  # final refusals
    deferred: list[str] = field(default_factory=list)
    blocked_at: float | None = None

    @property
    def settled_at(self) -> float | None:
        return self.sent_at if self.sent_at is not None else self.blocked_at


class Outcomes:
    """Follows one run's patients (their keys start with ``prefix``) on the two topics."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix.encode()
        self.patients: dict[str, PatientOutcome] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_progress = time.perf_counter()  # when the settled count last grew

    def observe(self, record: ConsumerRecord) -> None:
        if record.key is None or not record.key.startswith(self.prefix):
            return
        event = json.loads(record.value or b"{}")
        kind = event.get("type")
        at = record.timestamp / 1000
        outcome = self.patients.setdefault(record.key.decode(), PatientOutcome())
        if kind == "PatientBecameEligible":
            outcome.eligible_at = outcome.eligible_at or at
        elif kind == "MessageSent":
            outcome.sent_at = outcome.sent_at or at
        elif kind == "MessageBlocked":
            reason = str(event.get("payload", {}).get("reason"))
            if reason in DEFERRED:
                outcome.deferred.append(reason)
            else:
                outcome.blocked.append(reason)
                outcome.blocked_at = outcome.blocked_at or at

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="bench-pipeline-outcomes",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()
        wanted = [
            TopicPartition(topic.name, p)
            for topic in (ELIGIBILITY, MESSAGES)
            for p in sorted(consumer.partitions_for_topic(topic.name) or ())
        ]
        consumer.assign(wanted)
        await consumer.seek_to_beginning()
        self._task = asyncio.create_task(self._run(), name="bench-outcomes")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    self.observe(record)

    def settled(self) -> int:
        return sum(1 for o in self.patients.values() if o.settled_at is not None)

    async def wait_settled(self, expected: int, stall_s: float, limit_s: float) -> bool:
        """True once ``expected`` patients settled; False if nothing moved for ``stall_s``
        seconds (or ``limit_s`` passed): the unsettled ones are reported, not waited for."""
        deadline = time.monotonic() + limit_s
        last, moved = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self._task is not None and self._task.done():
                self._task.result()
            now_settled = self.settled()
            if now_settled >= expected:
                return True
            if now_settled != last:
                last, moved = now_settled, time.monotonic()
                self.last_progress = time.perf_counter()
            elif time.monotonic() - moved > stall_s:
                return False
            await asyncio.sleep(0.25)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer.stop(), timeout=5)


@dataclass
class LagSeries:
    """(seconds since start, {group: lag summed over its topics}) samples."""

    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def add(self, at: float, lag: Iterable[tuple[tuple[str, str], int]]) -> None:
        per_group: dict[str, int] = {}
        for (group, _topic), n in lag:
            per_group[group] = per_group.get(group, 0) + n
        self.samples.append((at, per_group))

    def groups(self) -> list[str]:
        return sorted({g for _, lag in self.samples for g in lag})

    def growth(self, group: str) -> float:
        """Mean lag of the last third of the samples minus that of the first third: a
        consumer that keeps up stays near 0; one falling behind grows with the run."""
        values = [lag.get(group, 0) for _, lag in self.samples]
        if len(values) < 3:
            return 0.0
        third = len(values) // 3
        return sum(values[-third:]) / third - sum(values[:third]) / third

    def peak(self, group: str) -> int:
        return max((lag.get(group, 0) for _, lag in self.samples), default=0)
