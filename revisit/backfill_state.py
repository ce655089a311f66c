"""What `revisit backfill` keeps between runs (the checkpoint) and what it reports."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path


class BackfillError(RuntimeError):
    """A problem the person running the backfill must fix (said in one sentence)."""


@dataclass
class Checkpoint:
    path: Path
    clinic_id: str
    done: set[str] = field(default_factory=set)
    accepted_events: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    refused_records: int = 0
    finished: bool = False
    _saved: float = 0.0

    @classmethod
    def load(cls, path: Path, clinic_id: str) -> Checkpoint:
        if not path.exists():
            return cls(path, clinic_id)
        raw = json.loads(path.read_text())
        if raw.get("clinic_id") != clinic_id:
            raise BackfillError(f"{path} is the checkpoint of another clinic; use --checkpoint")
        return cls(
            path,
            clinic_id,
            set(raw.get("done", [])),
            int(raw.get("accepted_events", 0)),
            int(raw.get("duplicates", 0)),
            list(raw.get("refused", [])),
            int(raw.get("refused_records", 0)),
            bool(raw.get("finished", False)),
        )

    def save(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._saved < 1.0:
            return
        body = {
            "clinic_id": self.clinic_id,
            "done": sorted(self.done),
            "accepted_events": self.accepted_events,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "refused_records": self.refused_records,
            "finished": self.finished,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self.path)
        self._saved = time.monotonic()


@dataclass
class Report:
    files: int
    records: int
    submissions: int
    skipped: int  # already accepted in an earlier run
    accepted_events: int
    duplicates: int
    refused_records: int
    refused: list[str]
    seconds: float
    found: dict[str, dict[str, int]]
    patients: int

    @property
    def events_per_second(self) -> float:
        return self.accepted_events / self.seconds if self.seconds > 0 else 0.0


def render(report: Report) -> list[str]:
    """The final report, one line each (counts, locations; never a patient's data)."""
    lines = [
        f"read      {report.files} files, {report.records} records, "
        f"{report.submissions} submissions ({report.skipped} done in an earlier run)",
        f"accepted  {report.accepted_events} events in {report.seconds:.1f} s "
        f"({report.events_per_second:.0f} events/s); {report.duplicates} records already in",
        f"refused   {report.refused_records} records",
    ]
    lines += [f"          {reason}" for reason in report.refused[:20]]
    if len(report.refused) > 20:
        lines.append(f"          ... and {len(report.refused) - 20} more (see the checkpoint)")
    lines.append(f"found     {report.patients} patients; open care needs by segment:")
    for segment, counts in sorted(report.found.items()):
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        lines.append(f"          {segment}: {shown}")
    return lines
