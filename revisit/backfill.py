"""`revisit backfill`: onboard a practice by loading its history through ingest, outreach held.

1. Hold the clinic's outreach (segmenter ``PUT /clinics/{id}/onboarding``): needs are found and
   kept, nothing opens.
2. Post every submission of the folder (``backfill_sources``) to ingest with ``concurrency``
   clients, a progress bar with the ETA, and a checkpoint of what ingest accepted (written
   every second): a run that crashes or is stopped resumes where it was, and anything sent twice
   is recognised by ingest. A submission refused whole is re-sent one record at a time, so one
   broken record is refused alone.
3. Wait until the segmenter has read all of it (its consumer lag, from the metrics service),
   then lift the hold: each patient is re-evaluated once, now, with the whole history in.
4. Report what was read, refused (where, never what) and found (needs per segment).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from revisit.backfill_sources import (
    SourceError,
    Submission,
    count_records,
    files,
    split,
    submissions,
)
from revisit.backfill_state import BackfillError, Checkpoint, Report, render

LAG = re.compile(r"^revisit_consumer_lag\{(?P<labels>[^}]*)\} (?P<value>[\d.e+]+)", re.M)
RETRIES = 6


@dataclass
class Options:
    folder: Path
    clinic_id: str
    ingest_url: str
    segmenter_url: str
    metrics_url: str
    api_key: str
    token: str
    checkpoint: Path
    concurrency: int = 4
    bundle_size: int = 200
    hl7_per_post: int = 100
    hold: bool = True
    wait_timeout_s: float = 3600.0
    lag_window_s: float = 20.0  # > the metrics service's lag sampling interval (15 s)
    show_progress: bool = True


async def run(options: Options) -> Report:
    if not options.folder.is_dir():
        raise BackfillError(f"{options.folder} is not a folder")
    paths = [p for p in files(options.folder) if p.resolve() != options.checkpoint.resolve()]
    if not paths:
        raise BackfillError(f"nothing to load in {options.folder} (.ndjson, .json, .hl7, .er7)")
    checkpoint = Checkpoint.load(options.checkpoint, options.clinic_id)
    ingest = httpx.AsyncClient(
        base_url=options.ingest_url,
        headers={"X-API-Key": options.api_key},
        timeout=120,
        trust_env=False,
    )
    staff = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {options.token}"}, timeout=60, trust_env=False
    )
    started = time.perf_counter()
    try:
        if options.hold:
            await _onboarding(staff, options, holding=True)
        total = sum(count_records(p) for p in paths)
        skipped = await _load(ingest, options, paths, checkpoint, total)
        checkpoint.save(force=True)
        loaded_s = time.perf_counter() - started
        if options.hold:
            await _wait_read(staff, options)
            await _onboarding(staff, options, holding=False)
            await _wait_reevaluated(staff, options)
        checkpoint.finished = True
        checkpoint.save(force=True)
        found, patients = await _found(staff, options)
    finally:
        await ingest.aclose()
        await staff.aclose()
    return Report(
        files=len(paths),
        records=total,
        submissions=len(checkpoint.done),
        skipped=skipped,
        accepted_events=checkpoint.accepted_events,
        duplicates=checkpoint.duplicates,
        refused_records=checkpoint.refused_records,
        refused=checkpoint.refused,
        seconds=loaded_s,
        found=found,
        patients=patients,
    )


async def _onboarding(staff: httpx.AsyncClient, options: Options, *, holding: bool) -> None:
    url = f"{options.segmenter_url}/clinics/{options.clinic_id}/onboarding"
    response = await staff.put(url, json={"holding": holding})
    if response.status_code != 200:
        raise BackfillError(
            f"the segmenter would not {'hold' if holding else 'release'} outreach: "
            f"HTTP {response.status_code} {response.text[:200]}"
        )


async def _load(
    ingest: httpx.AsyncClient,
    options: Options,
    paths: list[Path],
    checkpoint: Checkpoint,
    total: int,
) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    pending: Iterator[Submission] = (
        s
        for p in paths
        for s in submissions(p, options.folder, options.bundle_size, options.hl7_per_post)
    )
    skipped = 0
    lock = asyncio.Lock()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not options.show_progress, transient=False) as progress:
        task = progress.add_task(f"history of {options.clinic_id}", total=total)

        async def worker() -> None:
            nonlocal skipped
            while True:
                async with lock:
                    sub = next(pending, None)
                if sub is None:
                    return
                if sub.key in checkpoint.done:
                    skipped += 1
                else:
                    await _submit(ingest, sub, checkpoint)
                    checkpoint.done.add(sub.key)
                    checkpoint.save()
                progress.advance(task, sub.records)

        await asyncio.gather(*(worker() for _ in range(options.concurrency)))
    return skipped


async def _submit(ingest: httpx.AsyncClient, sub: Submission, checkpoint: Checkpoint) -> None:
    response = await _post(ingest, sub)
    if response.status_code in (200, 202):
        body = response.json()
        if body.get("duplicate"):
            checkpoint.duplicates += sub.records
        else:
            checkpoint.accepted_events += int(body.get("accepted", 0))
        return
    if sub.records > 1:  # whole or nothing: find the broken records by sending them alone
        for part in split(sub):
            await _submit(ingest, part, checkpoint)
        return
    checkpoint.refused_records += 1
    checkpoint.refused.append(f"{sub.key}: HTTP {response.status_code}: {_problem(response)}")


async def _post(ingest: httpx.AsyncClient, sub: Submission) -> httpx.Response:
    """Transient failures (network, 5xx, 429) are retried with backoff, then stop the run: the
    checkpoint keeps what was done, and the next run resumes."""
    for attempt in range(RETRIES):
        try:
            response = await ingest.post(
                sub.route, content=sub.body, headers={"content-type": sub.content_type}
            )
        except httpx.TransportError as exc:
            error = type(exc).__name__
        else:
            if response.status_code in (401, 403):
                raise BackfillError(f"ingest refused the API key: HTTP {response.status_code}")
            if response.status_code < 500 and response.status_code != 429:
                return response
            error = f"HTTP {response.status_code}"
        await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
    raise BackfillError(f"ingest is not taking submissions ({error}); run again to resume")


def _problem(response: httpx.Response) -> str:
    """Where ingest says the problem is (locations and messages carry no patient data)."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    issues = body.get("issues") if isinstance(body, dict) else None
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        return f"{issues[0].get('where', '')}: {issues[0].get('problem', '')}"[:300]
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, dict):
            return f"{first.get('loc', '')}: {first.get('msg', '')}"[:300]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issue = (body.get("issue") or [{}])[0]
        return f"{(issue.get('expression') or [''])[0]}: {issue.get('diagnostics', '')}"[:300]
    return str(detail or body)[:300]


async def _wait_read(staff: httpx.AsyncClient, options: Options) -> None:
    """Until the segmenter's (and the messenger's contacts) consumers have read the history:
    the metrics service's lag for them reads zero for a whole ``lag_window_s`` (longer than its
    sampling interval, so at least one of those samples was taken after the last submission)."""
    deadline = time.monotonic() + options.wait_timeout_s
    zero_since: float | None = None
    while time.monotonic() < deadline:
        lag = await _lag(staff, options.metrics_url)
        if lag == 0:
            zero_since = zero_since or time.monotonic()
            if time.monotonic() - zero_since >= options.lag_window_s:
                return
        else:
            zero_since = None
        await asyncio.sleep(1.0)
    raise BackfillError("the segmenter did not catch up in time; run again to finish")


async def _lag(staff: httpx.AsyncClient, metrics_url: str) -> int | None:
    try:
        text = (await staff.get(f"{metrics_url}/metrics")).text
    except httpx.HTTPError:
        return None
    total, seen = 0, False
    for match in LAG.finditer(text):
        labels = match["labels"]
        if 'topic="ehr.events.v1"' in labels and (
            'group="segmenter.journeys"' in labels or 'group="messenger.contacts"' in labels
        ):
            total += int(float(match["value"]))
            seen = True
    return total if seen else None


async def _wait_reevaluated(staff: httpx.AsyncClient, options: Options) -> None:
    url = f"{options.segmenter_url}/clinics/{options.clinic_id}/onboarding"
    deadline = time.monotonic() + options.wait_timeout_s
    while time.monotonic() < deadline:
        body = (await staff.get(url)).json()
        if body.get("pending_reevaluation") == 0:
            return
        await asyncio.sleep(1.0)
    raise BackfillError("the segmenter's re-evaluation did not finish in time")


async def _found(
    staff: httpx.AsyncClient, options: Options
) -> tuple[dict[str, dict[str, int]], int]:
    base, clinic = options.segmenter_url, options.clinic_id
    segments = (await staff.get(f"{base}/segments", params={"clinic_id": clinic})).json()
    found = {s["segment"]: s.get("memberships", {}) for s in segments.get("segments", [])}
    state = (await staff.get(f"{base}/clinics/{clinic}/onboarding")).json()
    return found, int(state.get("patients", 0))


__all__ = ["BackfillError", "Options", "Report", "SourceError", "render", "run"]
