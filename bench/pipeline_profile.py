"""Sampling profiles of the services while a phase runs (py-spy, a dev dependency).

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;...;frame count``); the
summary is the frames with the most samples on top of the stack (where the CPU went) and the
project's own functions with the most samples anywhere on the stack (which code path paid).
Idle samples (``--idle`` is off) are not recorded, so shares are of the busy time.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OWN_CODE = ("services/", "shared/", "revisit/")


@dataclass(frozen=True)
class Summary:
    samples: int
    top_self: list[tuple[str, int]]
    top_own: list[tuple[str, int]]


def summarise(collapsed: str, top: int = 8) -> Summary:
    """Self and own-code inclusive sample counts from py-spy's raw (collapsed) output."""
    self_counts: Counter[str] = Counter()
    own_counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_counts[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames if any(p in f for p in OWN_CODE)}:
            own_counts[frame] += count
    # Frames on (nearly) every stack (the service's main, the consumer loop) say nothing.
    telling = Counter({f: n for f, n in own_counts.items() if n < 0.8 * total})
    return Summary(total, self_counts.most_common(top), telling.most_common(top))


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``: lines differ between samples."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    parts = path.split("/")
    tail = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({tail})"


class Profiles:
    """py-spy on each pid for the length of a ``with`` block; no-op when py-spy is missing."""

    def __init__(self, folder: Path, label: str, pids: Mapping[str, int], rate: int = 67) -> None:
        self.folder = folder
        self.label = label
        self.pids = dict(pids)
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.summaries: dict[str, Summary] = {}

    def __enter__(self) -> Profiles:
        beside = Path(sys.executable).parent / "py-spy"
        exe = str(beside) if beside.exists() else shutil.which("py-spy")
        if exe is None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.folder / f"{self.label}-{name}.txt"
            self.procs[name] = subprocess.Popen(
                [
                    *(exe, "record", "--pid", str(pid), "--rate", str(self.rate)),
                    *("--nonblocking", "--format", "raw", "--output", str(out)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                continue
            path = self.folder / f"{self.label}-{name}.txt"
            if path.exists():
                self.summaries[name] = summarise(path.read_text(errors="replace"))
