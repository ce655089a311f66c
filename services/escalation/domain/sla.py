"""Service levels: how long a page may wait for an acknowledgement, and delivery back-off."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.events.escalations import Severity

DEFAULT_ACK_MINUTES: Mapping[Severity, int] = {
    Severity.urgent: 5,
    Severity.high: 15,
    Severity.normal: 60,
    Severity.low: 240,
}
MAX_ATTEMPTS = 20  # EscalationPaged.attempt allows 1..20


@dataclass(frozen=True)
class AckPolicy:
    """Acknowledge within N minutes by severity, else page the next person in the chain."""

    minutes: Mapping[Severity, int] = field(default_factory=lambda: dict(DEFAULT_ACK_MINUTES))
    max_attempts: int = MAX_ATTEMPTS

    def due(self, severity: Severity, now: datetime) -> datetime:
        return now + timedelta(minutes=self.minutes.get(severity, DEFAULT_ACK_MINUTES[severity]))

    def with_overrides(self, overrides: Mapping[str, int]) -> AckPolicy:
        """This policy with a clinic's own minutes for some severities."""
        merged = dict(self.minutes)
        for name, minutes in overrides.items():
            merged[Severity(name)] = int(minutes)
        return AckPolicy(merged, self.max_attempts)


def backoff_seconds(tries: int, base: float, cap: float) -> float:
    """Delay before delivery try ``tries + 1`` after ``tries`` failed ones: base, 2x, 4x ... cap."""
    return float(min(cap, base * (2 ** max(0, tries - 1))))
