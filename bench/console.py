"""How fast the staff console's pages are on the dev stack with a 2,000-patient practice.

    python -m bench.console [--patients 2000] [--days 2] [--speed 24] [--rounds 20]
                            [--settle 0.3] [--settle-timeout 300]

Starts `revisit dev` (embedded Postgres and broker, every service, the console, the synthetic
practice) on free ports in a temporary folder, lets the practice live ``--days`` simulated days
(history loaded, outreach, replies, red flags, bookings), waits until the stack has worked
through the days' backlog (its processes use less than ``--settle`` of a core), then signs in
as a nurse through the dev sign-in and fetches every page ``--rounds`` times, one after
another, as one browser would.
Each page's time is the console's whole answer: its calls to the services' APIs and the render.

Prints ``console-<page>: <p95> ms (...)`` per page and ``console-slowest`` (target: every page
under 300 ms at the 95th percentile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from bench._harness import detail, figure, load_average, machine_line, say
from revisit.embedded.ports import free_port
from shared.config import SERVICE_NAMES

TARGET_MS = 300.0
CLINIC = "clinic-demo"
PILOT = "bench-laser"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HREF = re.compile(r'href="(/(?:cases|inbox|patients)/[^"?#]+)"')


def _start(data_dir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str, str]:
    names = [*SERVICE_NAMES, "console", "mllp", "simulator", "pg", "kafka"]
    ports = {name: free_port() for name in names}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REVISIT_JWT_SECRET"}
    }
    env.update({f"REVISIT_{n.upper()}_PORT": str(p) for n, p in ports.items()})
    env["REVISIT_PG_PORT"], env["REVISIT_KAFKA_PORT"] = str(ports["pg"]), str(ports["kafka"])
    argv = [
        sys.executable,
        "-m",
        "revisit",
        "dev",
        "--data-dir",
        str(data_dir),
        "--view",
        "log",
        "--patients",
        str(args.patients),
        "--days",
        str(args.days),
        "--speed",
        str(args.speed),
        "--seed",
        "7",
    ]
    log = (data_dir / "bench.log").open("wb")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    return process, f"http://127.0.0.1:{ports['console']}", f"http://127.0.0.1:{ports['sequencer']}"


def _define_pilot(data_dir: Path, sequencer: str, deadline: float) -> None:
    """A pilot started as the practice begins, so its week-1 page has a preview to show: laser
    cancellations only (held from outreach in week 1; the rest of the practice is untouched)."""
    creds_path, token = data_dir / "dev-credentials.json", ""
    while time.monotonic() < deadline:
        try:
            token = json.loads(creds_path.read_text())["admin_token"]
            if httpx.get(f"{sequencer}/readyz", timeout=2).status_code == 200:
                break
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(1)
    else:
        raise RuntimeError("the sequencer was not ready to define the bench's pilot")
    headers = {"Authorization": f"Bearer {token}"}
    definition = {
        "pilot_id": PILOT,
        "clinic_id": CLINIC,
        "name": "Laser cancellations",
        "segment": "cancelled_not_rescheduled",
        "cohort": {"service_lines": ["laser"]},
        "cohort_size": 40,
        "holdout_share": 0.2,
    }
    for path, body in (("/pilots", definition), (f"/pilots/{PILOT}/start", None)):
        made = httpx.post(f"{sequencer}{path}", json=body, headers=headers, timeout=30)
        assert made.status_code in (200, 201), made.text


async def _wait_for_the_days(data_dir: Path, days: float, deadline: float) -> float:
    """Until the simulated clock has moved ``days`` days and stopped; the days it moved."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.clock import current_time

    creds_path = data_dir / "dev-credentials.json"
    for _ in range(max(1, int(deadline - time.monotonic()))):
        if creds_path.exists():
            break
        await asyncio.sleep(1)
    engine = create_async_engine(json.loads(creds_path.read_text())["database_url"])
    try:
        start, _ = await current_time(engine)
        moved = 0.0
        while time.monotonic() < deadline:
            now, rate = await current_time(engine)
            moved = (now - start) / timedelta(days=1)
            if moved >= days - 0.5 and rate == 0:
                break
            await asyncio.sleep(2)
        return moved
    finally:
        await engine.dispose()


def _settle(process: subprocess.Popen[bytes], quiet: float, deadline: float) -> tuple[float, float]:
    """Until the stack's processes use less than ``quiet`` of one core over 5 s (the services
    done with the days' backlog: consumers, timers, the metrics read model), or ``deadline``;
    (seconds waited, the last share of a core used)."""
    import psutil

    started, share = time.monotonic(), 1.0
    while time.monotonic() < deadline:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        before = sum(sum(p.cpu_times()[:2]) for p in family if p.is_running())
        time.sleep(5)
        after = sum(sum(p.cpu_times()[:2]) for p in family if p.is_running())
        share = (after - before) / 5
        if share < quiet:
            break
    return time.monotonic() - started, share


def _sign_in(client: httpx.Client) -> None:
    page = client.get("/sign-in")
    token = CSRF.search(page.text)
    assert token, "no sign-in form"
    signed = client.post(
        "/sign-in",
        data={
            "csrf": token.group(1),
            "subject": "nurse-bench",
            "role": "operator",
            "clinics": CLINIC,
            "next": "/",
        },
    )
    assert signed.status_code == 303, signed.text


def _pages(client: httpx.Client) -> dict[str, str]:
    """Every page of the console, with a real case, conversation and patient of the practice."""
    pages = {
        "queue": "/escalations",
        "queue-rows": "/escalations/rows",
        "inbox": "/inbox",
        "segments": "/segments",
        "words": "/words",
        "outcomes": "/outcomes",
        "pilots": "/pilots",
        "segment-edit": "/segments/cancelled_not_rescheduled",
        "pilot-week1": f"/pilots/{PILOT}?week=1",
        "pilot-week4": f"/pilots/{PILOT}?week=4",
    }
    for kind, page, prefix in (
        ("case", "/escalations", "/cases/"),
        ("conversation", "/inbox", "/inbox/"),
    ):
        found = [h for h in HREF.findall(client.get(page).text) if h.startswith(prefix)]
        if found:
            pages[kind] = found[0]
    if "conversation" in pages:
        story = HREF.findall(client.get(pages["conversation"]).text)
        stories = [h for h in story if h.startswith("/patients/")]
        if stories:
            pages["story"] = stories[0]
    return pages


def _measure(client: httpx.Client, path: str, rounds: int) -> list[float]:
    client.get(path)  # warm: the first call opens the console's connections to the services
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    return times


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.console")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--days", type=float, default=2)
    parser.add_argument("--speed", type=float, default=24)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the practice")
    parser.add_argument(
        "--settle", type=float, default=0.3, help="measure once the stack uses less of a core"
    )
    parser.add_argument("--settle-timeout", type=float, default=300, help="seconds at most")
    args = parser.parse_args()
    say(machine_line("console"))
    with tempfile.TemporaryDirectory(prefix="revisit-bench-console-") as tmp:
        data_dir = Path(tmp)
        process, console, sequencer = _start(data_dir, args)
        try:
            started = time.monotonic()
            _define_pilot(data_dir, sequencer, started + 120)
            moved = asyncio.run(_wait_for_the_days(data_dir, args.days, started + args.timeout))
            detail(
                f"practice of {args.patients} patients lived {moved:.1f} simulated days in "
                f"{time.monotonic() - started:.0f} s; load average {load_average()}"
            )
            waited, share = _settle(process, args.settle, time.monotonic() + args.settle_timeout)
            detail(
                f"stack settled in {waited:.0f} s (its processes used {share:.0%} of a core); "
                f"load average {load_average()} when the pages are measured"
            )
            with httpx.Client(base_url=console, timeout=30, trust_env=False) as client:
                _sign_in(client)
                pages = _pages(client)
                slowest = ("", 0.0)
                for name, path in pages.items():
                    times = sorted(_measure(client, path, args.rounds))
                    p95 = times[max(0, int(len(times) * 0.95) - 1)]
                    p50 = statistics.median(times)
                    say(
                        figure(
                            f"console-{name}",
                            p95,
                            "ms",
                            f"p95 of {args.rounds}, p50 {p50:.0f} ms, target < 300 ms",
                        )
                    )
                    if p95 > slowest[1]:
                        slowest = (name, p95)
                missing = {"case", "conversation", "story"} - set(pages)
                if missing:
                    detail(f"the practice had no {', '.join(sorted(missing))} to measure yet")
                say(
                    figure(
                        "console-slowest", slowest[1], "ms", f"{slowest[0]}, p95; target < 300 ms"
                    )
                )
                if slowest[1] >= TARGET_MS:
                    say(f"BELOW TARGET: console-{slowest[0]} p95 {slowest[1]:.0f} ms >= 300 ms")
                detail(f"load average {load_average()} when the last page was measured")
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
