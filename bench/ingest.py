"""Ingest throughput, end to end: HL7 v2 SIU over MLLP and FHIR Bundles over HTTP, each counted
when its events are on ``ehr.events.v1``, beside a baseline measured in the same run.

    python -m bench.ingest [--messages N] [--bundles M] [--connections C] [--window W]

The ingest service runs as its own process (``revisit service ingest``), exactly as deployed,
against an embedded Postgres and broker (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS). The load
comes from this process: C MLLP connections, each keeping up to W messages in flight (an
interface engine pipelining), and C concurrent HTTP clients. A message counts once all of its
events (PatientUpserted + the appointment event) have been read back from the topic.

Baselines: an MLLP server that acknowledges without doing anything (the framing and socket
ceiling of this client on this machine), and ``GET /healthz`` on the ingest process (the
HTTP round trip through uvicorn and FastAPI, no auth, no database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._harness import (
    CpuMeter,
    Infra,
    TopicCounter,
    detail,
    figure,
    infrastructure,
    machine_line,
    prepare,
    rate,
    say,
)
from revisit.embedded.ports import child_preexec, free_port, stop_child
from services.ingest.keys import create_api_key
from shared.topics import EHR_EVENTS

TARGET = 1000.0
START, END = b"\x0b", b"\x1c\x0d"
BASE = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)
SECRET = "bench-ingest-" + "b" * 40


# --- what an EHR sends ---------------------------------------------------------------------------


def siu_messages(n: int, key: str, run: str) -> Iterator[bytes]:
    """``n`` distinct SIU^S12 bookings, the shape a dermatology EHR sends (about 600 bytes)."""
    for i in range(n):
        at = BASE + timedelta(minutes=15 * (i % 2000))
        stamp, sent = (
            at.strftime("%Y%m%d%H%M%S+0000"),
            (at - timedelta(days=7)).strftime("%Y%m%d%H%M%S+0000"),
        )
        patient = f"MRN{run}{i % max(1, n // 2):07d}"
        segments = [
            f"MSH|^~\\&|EMA|DERM1|REVISIT|REVISIT|{sent}|{key}|SIU^S12^SIU_S12|{run}-{i:08d}|P"
            "|2.5.1",
            f"SCH|PL{i:08d}|{run}A{i:08d}|||||FOLLOWUP^Follow-up visit^HL70276"
            f"|SKINCHECK^Skin check^L|30|min|^^30^{stamp}||||||||||||||Booked",
            f"TQ1|||||||{stamp}|{(at + timedelta(minutes=30)).strftime('%Y%m%d%H%M%S+0000')}",
            f"PID|1||{patient}^^^DERM1^MR||Doe^Jane^A^^^^L||19800101|F|||"
            f"12 Main St^^Austin^TX^78701^US||(512)555-{i % 10000:04d}^PRN^CP||eng",
            "PV1|1|O|DERM1^^^DERM1",
            "RGS|1",
            f"AIS|1||SKINCHECK^Skin check^L|{stamp}|||30|min",
            "AIL|1||EXAM3^^^DERM1",
            f"AIP|1||DR{i % 9:02d}^Smith^Jo",
        ]
        yield START + "\r".join(segments).encode() + b"\r" + END


def fhir_bundles(n: int, run: str) -> Iterator[bytes]:
    """``n`` transaction Bundles, each a Patient and its booked Appointment."""
    import json

    for i in range(n):
        at = BASE + timedelta(minutes=15 * (i % 2000))
        patient, appt = f"{run}p{i:07d}", f"{run}a{i:07d}"
        meta = {"versionId": "1", "lastUpdated": (at - timedelta(days=7)).isoformat()}
        bundle = {
            "resourceType": "Bundle",
            "id": f"{run}b{i:07d}",
            "type": "transaction",
            "meta": {"versionId": "1"},
            "entry": [
                {
                    "fullUrl": f"Patient/{patient}",
                    "request": {"method": "PUT", "url": f"Patient/{patient}"},
                    "resource": {
                        "resourceType": "Patient",
                        "id": patient,
                        "meta": meta,
                        "name": [{"given": ["Jane"], "family": "Doe"}],
                        "telecom": [
                            {
                                "system": "phone",
                                "value": f"+1512555{i % 10000:04d}",
                                "use": "mobile",
                            }
                        ],
                        "address": [{"state": "TX", "country": "US"}],
                    },
                },
                {
                    "fullUrl": f"Appointment/{appt}",
                    "request": {"method": "PUT", "url": f"Appointment/{appt}"},
                    "resource": {
                        "resourceType": "Appointment",
                        "id": appt,
                        "meta": meta,
                        "status": "booked",
                        "serviceType": [
                            {
                                "coding": [
                                    {"system": "http://www.ama-assn.org/go/cpt", "code": "17311"}
                                ]
                            }
                        ],
                        "start": at.isoformat(),
                        "end": (at + timedelta(minutes=30)).isoformat(),
                        "participant": [
                            {"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
                        ],
                    },
                },
            ],
        }
        yield json.dumps(bundle).encode()


# --- load ----------------------------------------------------------------------------------------


async def mllp_load(port: int, frames: list[bytes], connections: int, window: int) -> int:
    """Send every frame over ``connections`` pipelined connections; returns ACKs with AA."""
    shares = [frames[i::connections] for i in range(connections)]
    results = await asyncio.gather(*(_one_connection(port, s, window) for s in shares))
    return sum(results)


async def _one_connection(port: int, frames: list[bytes], window: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    room = asyncio.Semaphore(window)
    accepted = 0

    async def receive() -> None:
        nonlocal accepted
        for _ in frames:
            ack = await reader.readuntil(END)
            accepted += b"MSA|AA|" in ack
            room.release()

    receiving = asyncio.create_task(receive())
    for frame in frames:
        await room.acquire()
        writer.write(frame)
        await writer.drain()
    await receiving
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return accepted


async def http_load(requests: list[Callable[[httpx.AsyncClient], Any]], concurrency: int) -> int:
    """Run the request factories ``concurrency`` at a time; returns how many answered 2xx."""
    queue: asyncio.Queue[Callable[[httpx.AsyncClient], Any]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    ok = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        while not queue.empty():
            response = await queue.get_nowait()(client)
            ok += response.status_code < 300

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return ok


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def until_on_topic(counter: TopicCounter, started: float, limit: float) -> float:
    if not await counter.wait(limit):
        raise RuntimeError(f"only {counter.count}/{counter.target} events reached the topic")
    assert counter.finished_at is not None
    return counter.finished_at - started


# --- the servers ---------------------------------------------------------------------------------


def start_ingest(infra: Infra, port: int, mllp: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REVISIT_", "OTEL_"))},
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "REVISIT_PORT": str(port),
        "REVISIT_MLLP_PORT": str(mllp),
        "REVISIT_PROFILE": "test",
        "REVISIT_CLOCK": "system",
        "REVISIT_JWT_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "revisit", "service", "ingest"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec(),
        )


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ingest exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), opener.open(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"ingest not ready after {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def echo_server(port: int) -> None:
    """``--echo-server``: acknowledge every MLLP frame at once (the baseline's server)."""
    ack = START + b"MSH|^~\\&|ECHO|ECHO|||20270101000000||ACK|1|P|2.5.1\rMSA|AA|1\r" + END

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await reader.readuntil(END)
                writer.write(ack)
                await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port, limit=1 << 20)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the run -------------------------------------------------------------------------------------


async def measure(
    infra: Infra, args: argparse.Namespace, ports: dict[str, int], ingest_pid: int
) -> list[str]:
    run = f"{os.getpid() % 1000:03d}{int(time.time()) % 100000:05d}"
    key = await create_api_key(infra.database_url, "clinic-bench", "bench")
    frames = list(siu_messages(args.messages, key, run))
    lines: list[str] = []

    started = time.perf_counter()
    echoed = await mllp_load(ports["echo"], frames, args.connections, args.window)
    echo_rate = rate(echoed, time.perf_counter() - started)
    detail(f"mllp echo baseline: {echoed} ACKs at {echo_rate:.0f}/s")

    counter = TopicCounter(infra.bootstrap, EHR_EVENTS.name, 2 * args.messages)
    await counter.start()
    meter = CpuMeter({**infra.pids, "ingest": ingest_pid})
    try:
        with meter:
            started = time.perf_counter()
            accepted = await mllp_load(ports["mllp"], frames, args.connections, args.window)
            acked = time.perf_counter() - started
            if accepted != args.messages:
                raise RuntimeError(f"only {accepted}/{args.messages} SIU messages were accepted")
            elapsed = await until_on_topic(counter, started, limit=300)
    finally:
        await counter.stop()
    detail(
        f"SIU: all ACKs after {acked:.2f} s, all {2 * args.messages} events on the topic after "
        f"{elapsed:.2f} s; load average {load_average()}"
    )
    detail(f"SIU CPU per message: {meter.per_event(args.messages)} (python = this load client)")
    ingest_cpu = meter.used.get("ingest", 0.0)
    if ingest_cpu > 0:
        detail(
            f"SIU capacity of the ingest process on one uncontended core: "
            f"{args.messages / ingest_cpu:.0f} messages/s (1 / its CPU per message)"
        )
    lines.append(
        figure(
            "ingest_mllp_siu",
            rate(args.messages, elapsed),
            "messages/s",
            f"target >= {TARGET:.0f}; baseline MLLP echo {echo_rate:.0f} messages/s; "
            f"{args.connections} connections x {args.window} in flight",
        )
    )

    base = f"http://127.0.0.1:{ports['http']}"
    meter = CpuMeter({"ingest": ingest_pid})
    with meter:
        started = time.perf_counter()
        pings = await http_load(
            [lambda c: c.get(f"{base}/healthz")] * args.bundles, args.connections
        )
        ping_rate = rate(pings, time.perf_counter() - started)
    detail(f"HTTP baseline: {pings} GET /healthz at {ping_rate:.0f}/s")
    detail(f"HTTP baseline CPU per request: {meter.per_event(pings)}")

    total = 2 * args.messages + 2 * args.bundles
    counter = TopicCounter(infra.bootstrap, EHR_EVENTS.name, total)
    await counter.start()
    meter = CpuMeter({**infra.pids, "ingest": ingest_pid})
    try:
        headers = {"X-API-Key": key, "Content-Type": "application/fhir+json"}
        posts = [
            (lambda body: lambda c: c.post(f"{base}/fhir/r4", content=body, headers=headers))(b)
            for b in fhir_bundles(args.bundles, run)
        ]
        with meter:
            started = time.perf_counter()
            accepted = await http_load(posts, args.connections)
            if accepted != args.bundles:
                raise RuntimeError(f"only {accepted}/{args.bundles} bundles were accepted")
            elapsed = await until_on_topic(counter, started, limit=300)
    finally:
        await counter.stop()
    detail(f"FHIR: all on the topic after {elapsed:.2f} s; load average {load_average()}")
    detail(f"FHIR CPU per Bundle: {meter.per_event(args.bundles)} (python = this load client)")
    lines.append(
        figure(
            "ingest_fhir_bundle",
            rate(args.bundles, elapsed),
            "messages/s",
            f"Bundle of Patient + Appointment; baseline GET /healthz {ping_rate:.0f} requests/s; "
            f"{args.connections} concurrent clients",
        )
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--bundles", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server)
        return
    say(machine_line("ingest"))
    folder = Path(tempfile.mkdtemp(prefix="revisit-bench-ingest-"))
    with infrastructure(prefix="revisit-bench-ingest-") as infra:
        asyncio.run(prepare(infra))
        ports = {"http": free_port(), "mllp": free_port(), "echo": free_port()}
        log = folder / "ingest.log"
        ingest = start_ingest(infra, ports["http"], ports["mllp"], log)
        echo = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest", "--echo-server", str(ports["echo"])],
            preexec_fn=child_preexec(),
        )
        try:
            wait_ready(f"http://127.0.0.1:{ports['http']}/readyz", ingest, log)
            for line in asyncio.run(measure(infra, args, ports, ingest.pid)):
                say(line)
        finally:
            stop_child(echo, signal.SIGTERM, 5, "echo server")
            stop_child(ingest, signal.SIGTERM, 15, "ingest")
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
