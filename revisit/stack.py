"""Starting the local stack: the backing stores, topics, migrations, dev credentials and the
supervised services, up to every /readyz. `revisit dev` and `revisit pilot` both start here.

Order: embedded Postgres -> embedded broker -> topics -> migrations -> dev credentials -> the
services (supervised) -> wait for every /readyz. Stopping is registered on the caller's
ExitStack as each part starts, in reverse order: services, then the broker, then Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from revisit.supervisor import ChildSpec, LineWriter, RestartPolicy, Supervisor
from shared.config import SERVICE_NAMES

DEMO_CLINIC = "clinic-demo"
CONSOLE = "console"  # the staff console: no schema, no topics; it calls the services' APIs
READY_TIMEOUT = 60.0
TOKEN_TTL = timedelta(days=30)
HOST = "127.0.0.1"


class DevError(RuntimeError):
    """A start-up problem with a message written for the person running `make run`."""


def port_from_env(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevError(f"{var}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def load_credentials(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def save_credentials(path: Path, creds: Mapping[str, Any]) -> None:
    """Write with mode 0600 from the first byte (never briefly world-readable), then rename."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(creds), f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def token_needs_renewal(creds: Mapping[str, Any], now: datetime) -> bool:
    try:
        expires = datetime.fromisoformat(creds["admin_token_expires_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return not creds.get("admin_token") or expires - now < timedelta(days=1)


def issue_admin_token(creds: dict[str, Any]) -> None:
    from shared.auth import issue_staff_token

    now = datetime.now(UTC)
    creds["admin_token"] = issue_staff_token(
        creds["jwt_secret"], subject="dev-admin", role="admin", clinics="*", ttl=TOKEN_TTL
    )
    creds["admin_token_expires_at"] = (now + TOKEN_TTL).isoformat(timespec="seconds")


def process_alive(pid: Callable[[], int | None]) -> Callable[[], bool]:
    """Liveness by process, not by connecting: no noise in the server's log, and a zombie (dead,
    not yet reaped by its owner) counts as dead."""
    from revisit.embedded.ports import pid_alive

    def alive() -> bool:
        current = pid()
        return current is not None and pid_alive(current)

    return alive


def readiness_error(url: str) -> str | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=1.0) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        return str(getattr(exc, "reason", exc))


def wait_ready(sup: Supervisor, urls: Mapping[str, str], timeout: float) -> None:
    pending, errors = dict(urls), dict.fromkeys(urls, "no answer yet")
    deadline = time.monotonic() + timeout
    while pending:
        failure = sup.poll()  # a service crashing on start-up is reported and restarted meanwhile
        if failure:
            raise DevError(failure)
        for name, url in list(pending.items()):
            error = readiness_error(url)
            if error is None:
                del pending[name]
            else:
                errors[name] = error
        if pending and time.monotonic() > deadline:
            for name, url in pending.items():
                sup.say(
                    f"{name} is not ready after {timeout:g} s: {url} -> {errors[name]}", loud=True
                )
                for text in sup.last_lines(name, 10):
                    sup.say(f"  | {text}", loud=True)
            raise DevError(f"not ready after {timeout:g} s: {', '.join(pending)}")
        time.sleep(0.3)


async def _prepare(bootstrap: str, dsn: str, creds: dict[str, Any], new_key: bool) -> None:
    from revisit.migrate import migrate_all
    from services.ingest.keys import create_api_key
    from shared.config import KafkaSettings
    from shared.kafka import ensure_topics

    kafka = KafkaSettings()
    await ensure_topics(
        bootstrap,
        kafka.kafka_partitions,
        kafka.kafka_replication_factor,
        dlq_retention_days=kafka.kafka_dlq_retention_days,
    )
    await migrate_all(dsn)
    if new_key:
        creds["api_key"] = await create_api_key(dsn, DEMO_CLINIC, "revisit dev")


@dataclass
class Backing:
    """Where the database and broker are, and how to notice that an embedded one died."""

    dsn: str = ""
    shown_dsn: str = ""
    db_id: str = ""
    db_new: bool = False
    bootstrap: str = ""
    probes: dict[str, Callable[[], bool]] = field(default_factory=dict)


def _start_backing(
    env: Mapping[str, str], data_dir: Path, stack: contextlib.ExitStack, out: LineWriter
) -> Backing:
    b = Backing()
    if env.get("DATABASE_URL"):
        b.dsn = b.shown_dsn = env["DATABASE_URL"]
        b.db_id = hashlib.sha256(b.dsn.encode()).hexdigest()[:16]  # no password in the file
    else:
        from revisit.embedded.postgres import EmbeddedPostgres

        pg_dir = data_dir / "pg"
        b.db_id = f"embedded:{pg_dir.resolve()}"
        b.db_new = not pg_dir.is_dir() or not any(pg_dir.iterdir())
        pg_port = port_from_env(env, "REVISIT_PG_PORT", 0) or None
        pg = EmbeddedPostgres(pg_dir, pg_port, log_path=data_dir / "postgres.log")
        # Registered before start() so an interrupted start is cleaned up too.
        stack.callback(_quietly, out, "postgres", lambda: pg.stop(2.5))
        out.line("revisit", f"starting postgres ({'new' if b.db_new else 'existing'} {pg_dir})")
        pg.start(30.0)
        b.dsn, b.shown_dsn = pg.dsn, pg.plain_dsn
        b.probes["postgres"] = process_alive(lambda: pg.pid)
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        b.bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    else:
        from revisit.embedded.broker import EmbeddedBroker

        port = port_from_env(env, "REVISIT_KAFKA_PORT", 0) or None
        broker = EmbeddedBroker(port, log_path=data_dir / "broker.log")
        stack.callback(_quietly, out, "broker", lambda: broker.stop(2.0))
        out.line("revisit", "starting the embedded broker (memory storage: empty on every start)")
        broker.start(30.0)
        b.bootstrap = broker.bootstrap
        b.probes["broker"] = process_alive(lambda: broker.pid)
    return b


def _quietly(out: LineWriter, what: str, stop: Callable[[], object]) -> None:
    try:
        stop()
    except Exception as exc:  # one failing stop must not keep the rest running
        out.line("revisit", f"stopping {what} failed: {exc!r}", loud=True)


@dataclass
class StartedStack:
    sup: Supervisor
    base: dict[str, str]  # service -> base URL
    backing: Backing
    creds: dict[str, Any]
    creds_path: Path
    console: str | None = None  # the staff console's URL, when it runs


def start_stack(
    env: Mapping[str, str],
    data_dir: Path,
    stack: contextlib.ExitStack,
    out: LineWriter,
    specs: Callable[[Mapping[str, str]], list[ChildSpec]],
    ports: Mapping[str, int],
    policy: RestartPolicy | None = None,
) -> StartedStack:
    """Everything up and ready; ``specs`` makes the children from the common environment."""
    from revisit.embedded.ports import child_preexec

    creds_path = data_dir / "dev-credentials.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    backing = _start_backing(env, data_dir, stack, out)

    creds = load_credentials(creds_path)
    creds.setdefault("jwt_secret", secrets.token_urlsafe(48))
    # The synthetic practice's scheduling API asks for a bearer token, as a real EHR's does.
    creds.setdefault("scheduling_token", secrets.token_urlsafe(32))
    # Seals the console's session cookies: kept, so a restart does not sign everyone out.
    creds.setdefault("console_secret", secrets.token_urlsafe(48))
    creds["clinic_id"] = DEMO_CLINIC
    new_key = (
        backing.db_new or not creds.get("api_key") or creds.get("api_key_database") != backing.db_id
    )
    out.line("revisit", "creating topics, migrating" + (", new dev API key" if new_key else ""))
    asyncio.run(_prepare(backing.bootstrap, backing.dsn, creds, new_key))
    creds["api_key_database"] = backing.db_id
    # The embedded database has no password, so `revisit clock` may find it here; an external
    # DATABASE_URL (which may carry one) is never written down.
    creds["database_url"] = "" if env.get("DATABASE_URL") else backing.dsn
    creds["kafka_bootstrap"] = backing.bootstrap  # for `revisit dlq` beside the dev stack
    if token_needs_renewal(creds, datetime.now(UTC)):
        issue_admin_token(creds)
    save_credentials(creds_path, creds)

    common = {
        "DATABASE_URL": backing.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": backing.bootstrap,
        # One shared "now" in Postgres: the simulator (and tests) move every service through days.
        "REVISIT_CLOCK": env.get("REVISIT_CLOCK", "controlled"),
        # MLLP senders of the demo practice need no key in MSH-8 on the local stack.
        "REVISIT_MLLP_CLINIC_ID": env.get("REVISIT_MLLP_CLINIC_ID", DEMO_CLINIC),
        "REVISIT_PROFILE": "dev",
        "REVISIT_JWT_SECRET": creds["jwt_secret"],
        # The dev tools' token (simulator, live view) lives as long as TOKEN_TTL; production
        # refuses any maximum above 24 hours.
        "REVISIT_TOKEN_MAX_HOURS": str(TOKEN_TTL.total_seconds() / 3600),
        "REVISIT_MESSENGER_FHIR_TOKEN": creds["scheduling_token"],
        "REVISIT_CONSOLE_SECRET": creds["console_secret"],
    }
    sup = Supervisor(specs(common), writer=out, policy=policy, preexec_fn=child_preexec())
    stack.callback(sup.stop)  # registered last, so it runs first: services before broker and db
    for name, alive in backing.probes.items():
        sup.add_probe(name, alive)
    sup.start()
    base = {n: f"http://{HOST}:{ports[n]}" for n in SERVICE_NAMES}
    console = f"http://{HOST}:{ports[CONSOLE]}" if CONSOLE in ports else None
    ready = {n: f"{b}/readyz" for n, b in base.items()}
    if console is not None:
        ready[CONSOLE] = f"{console}/readyz"
    wait_ready(sup, ready, READY_TIMEOUT)
    return StartedStack(sup, base, backing, creds, creds_path, console)
