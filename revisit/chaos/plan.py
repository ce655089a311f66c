"""What a fault run does: the practice's size and days, and the seeded script of faults."""

from __future__ import annotations

import random
from dataclasses import dataclass

from revisit.chaos.faults import Fault
from shared.config import SERVICE_NAMES


@dataclass(frozen=True)
class Plan:
    seed: int = 7
    patients: int = 250
    days: float = 8.0
    speed: float = 2.0  # at most this many simulated hours per real second
    kill_rounds: int = 2  # every service killed this many times
    broker_pause_s: float = 20.0
    database_restart: bool = True
    database_pause_s: float = 30.0
    gap_s: float = 6.0  # after one fault (and its recovery) before the next
    duplicate_share: float = 0.1
    hold_back_share: float = 0.05
    replays_per_round: int = 5
    speak_up_share: float = 0.4  # rounds after which a patient texts STOP and another a red flag

    def script(self) -> list[Fault]:
        rng = random.Random(self.seed)
        faults: list[Fault] = []
        for _ in range(self.kill_rounds):
            order = list(SERVICE_NAMES)
            rng.shuffle(order)
            faults += [Fault("kill", name) for name in order]
        others = []
        if self.broker_pause_s:
            others.append(Fault("pause_broker", seconds=self.broker_pause_s))
        if self.database_restart:
            others.append(Fault("restart_database"))
        if self.database_pause_s:
            others.append(Fault("pause_database", seconds=self.database_pause_s))
        for fault in others:  # spread among the kills, at seeded places
            faults.insert(rng.randrange(len(faults) + 1), fault)
        return faults


FULL = Plan()
# Inside `make test`: two faults, a few simulated days.
SHORT = Plan(
    patients=60,
    days=3.0,
    speed=2.0,
    kill_rounds=0,
    broker_pause_s=0,
    database_pause_s=0,
    gap_s=5.0,
    speak_up_share=1.0,
)


def short_script() -> list[Fault]:
    return [Fault("kill", "messenger"), Fault("restart_database")]
