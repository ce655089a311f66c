"""`revisit dev` (what `make run` calls): the whole stack on one machine, no Docker.

Order: embedded Postgres -> embedded broker -> topics -> migrations -> dev credentials -> the six
services and the staff console (supervised) -> wait for every /readyz -> print where everything
is. Ctrl-C or SIGTERM stops the services first (their Kafka clients hang if the broker goes
first, see docs/kafka-notes.md), then the broker, then Postgres, and exits 0. A service that dies is
restarted up to three times (see revisit.supervisor); a dead broker or Postgres stops
everything, because the broker loses every topic and offset on restart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from revisit.stack import (
    CONSOLE,
    DEMO_CLINIC,
    HOST,
    Backing,
    DevError,
    port_from_env,
    start_stack,
)
from revisit.supervisor import ChildSpec, LineWriter, interrupt_on_stop_signals
from shared.config import DEFAULT_PORTS, SERVICE_NAMES

MLLP_PORT = 2575
SIMULATOR_PORT = 8007  # the synthetic practice's FHIR scheduling API
CONSOLE_PORT = 8008  # the staff console (services/console/settings.py has the same default)
# Example requests for the printed curl lines; adjust if the services' routes move.
TOKEN_HOW = (
    "REVISIT_JWT_SECRET from jwt_secret there, then `revisit token --role operator "
    f"--clinic {DEMO_CLINIC} --subject YOU --ttl-hours 8`"
)


def planned_ports(env: Mapping[str, str], simulator: bool = False) -> dict[str, tuple[int, str]]:
    """name -> (port, the env var that changes it) for every fixed port of the stack."""
    plan = {}
    for name in SERVICE_NAMES:
        var = f"REVISIT_{name.upper()}_PORT"
        plan[name] = (port_from_env(env, var, DEFAULT_PORTS[name]), var)
    plan["mllp"] = (port_from_env(env, "REVISIT_MLLP_PORT", MLLP_PORT), "REVISIT_MLLP_PORT")
    var = "REVISIT_CONSOLE_PORT"
    plan[CONSOLE] = (port_from_env(env, var, CONSOLE_PORT), var)
    if simulator:
        var = "REVISIT_SIMULATOR_PORT"
        plan["simulator"] = (port_from_env(env, var, SIMULATOR_PORT), var)
    return plan


def check_port_free(port: int, env_var: str, what: str, host: str = HOST) -> None:
    """Fail fast, naming the port and its env var, instead of a service dying in a restart loop."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option uvicorn sets, so a port in TIME_WAIT is not mistaken for a taken one.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DevError(
                f"port {port} for {what} is already in use ({exc.strerror}); stop whatever "
                f"listens there or set {env_var} to another port"
            ) from None


def check_ports(plan: Mapping[str, tuple[int, str]]) -> None:
    seen: dict[int, str] = {}
    for what, (port, var) in plan.items():
        if port in seen:
            raise DevError(f"{what} and {seen[port]} both want port {port}; change {var}")
        seen[port] = what
        check_port_free(port, var, what)


def service_specs(
    ports: Mapping[str, tuple[int, str]],
    common: Mapping[str, str],
    simulator: list[str] | None = None,
    scheduling_url: str | None = None,
) -> list[ChildSpec]:
    """The six services, the staff console (when ``ports`` has one) and the synthetic practice
    (``simulator``: its practice options).

    With a simulator (or a ``scheduling_url``), booking by text goes to the synthetic
    practice's FHIR scheduling API, as it would go to a real EHR's.
    """
    if simulator is not None:
        scheduling_url = f"http://{HOST}:{ports['simulator'][0]}/fhir"
    console = f"http://{HOST}:{ports[CONSOLE][0]}" if CONSOLE in ports else None
    specs = []
    for name in SERVICE_NAMES:
        env = {**common, "REVISIT_PORT": str(ports[name][0])}
        if name == "escalation" and console is not None:
            env["REVISIT_ESCALATION_PUBLIC_URL"] = console  # pages link to the console's case
        if name == "ingest":
            env["REVISIT_MLLP_PORT"] = str(ports["mllp"][0])
        if name == "messenger":
            # Tracked booking links are answered by the messenger itself on this machine.
            env["REVISIT_MESSENGER_LINK_BASE_URL"] = f"http://{HOST}:{ports[name][0]}/b"
        # The previews: the segmenter asks the sequencer, which asks the messenger for words.
        if name == "sequencer":
            env["REVISIT_SEQUENCER_MESSENGER_URL"] = f"http://{HOST}:{ports['messenger'][0]}"
        if name == "segmenter":
            env["REVISIT_SEGMENTER_SEQUENCER_URL"] = f"http://{HOST}:{ports['sequencer'][0]}"
        if name == "messenger" and scheduling_url is not None:
            env["REVISIT_MESSENGER_SCHEDULING"] = "fhir"
            env["REVISIT_MESSENGER_FHIR_BASE_URL"] = scheduling_url
        specs.append(ChildSpec(name, [sys.executable, "-m", "revisit", "service", name], env))
    if console is not None:
        specs.append(console_spec(ports, common, console))
    if simulator is not None:
        argv = [sys.executable, "-m", "revisit", "simulate", *simulator]
        argv += ["--ingest-url", f"http://{HOST}:{ports['ingest'][0]}"]
        argv += ["--messenger-url", f"http://{HOST}:{ports['messenger'][0]}"]
        argv += ["--sequencer-url", f"http://{HOST}:{ports['sequencer'][0]}"]
        argv += ["--escalation-url", f"http://{HOST}:{ports['escalation'][0]}"]
        argv += ["--mllp-port", str(ports["mllp"][0]), "--port", str(ports["simulator"][0])]
        specs.append(ChildSpec("simulator", argv, dict(common)))
    return specs


def console_spec(
    ports: Mapping[str, tuple[int, str]], common: Mapping[str, str], public_url: str
) -> ChildSpec:
    """The staff console, pointed at the services; the dev sign-in is on (local stack only).

    Not required: a console that keeps failing is reported, and the pipeline goes on.
    """
    env = {
        **common,
        "REVISIT_PORT": str(ports[CONSOLE][0]),
        "REVISIT_CONSOLE_PUBLIC_URL": public_url,
        "REVISIT_CONSOLE_DEV_SIGN_IN": "true",
        "REVISIT_CONSOLE_DEFAULT_CLINIC": DEMO_CLINIC,
    }
    for name in ("segmenter", "sequencer", "messenger", "escalation", "metrics"):
        env[f"REVISIT_CONSOLE_{name.upper()}_URL"] = f"http://{HOST}:{ports[name][0]}"
    argv = [sys.executable, "-m", "revisit", "service", CONSOLE]
    return ChildSpec(CONSOLE, argv, env, required=False)


def simulator_options(args: argparse.Namespace) -> list[str] | None:
    if getattr(args, "no_simulator", True):
        return None
    return [
        "--data-dir",
        str(args.data_dir),
        "--seed",
        str(args.seed),
        "--patients",
        str(args.patients),
        "--speed",
        str(args.speed),
        "--days",
        str(args.days),
        *(["--start", args.start.isoformat()] if args.start else []),
    ]


def _run(args: argparse.Namespace, stack: contextlib.ExitStack, out: LineWriter) -> str:
    """Start everything, then supervise; returns only with the reason the stack failed."""
    env = os.environ
    simulator = simulator_options(args)
    ports = planned_ports(env, simulator=simulator is not None)
    check_ports(ports)
    data_dir = Path(args.data_dir)
    if args.fresh:
        shutil.rmtree(data_dir / "pg", ignore_errors=True)  # only what we own, not the data dir
        (data_dir / "dev-credentials.json").unlink(missing_ok=True)
        (data_dir / "simulator.json").unlink(missing_ok=True)
    started = start_stack(
        env,
        data_dir,
        stack,
        out,
        lambda common: service_specs(ports, common, simulator),
        {name: port for name, (port, _) in ports.items()},
    )
    base, backing, creds = started.base, started.backing, started.creds
    banner = ready_banner(
        base, ports["mllp"][0], backing, started.creds_path, creds, started.console
    )
    out.block(banner)
    if simulator is not None and wants_live_view(args, out):
        from revisit.live_view import run_live_view

        log_path = data_dir / "stack.log"
        out.line("revisit", f"live view on; every service's log goes to {log_path}")
        with log_path.open("a") as log:
            out.out = log  # the LineWriter's lock keeps lines whole across the switch
            try:
                failure = run_live_view(
                    started.sup, base, backing.dsn, creds, args.speed, args.patients, data_dir
                )
            finally:
                out.out = sys.stdout
        return failure or "the supervisor stopped"
    return started.sup.run() or "the supervisor stopped"


def wants_live_view(args: argparse.Namespace, out: LineWriter) -> bool:
    view = getattr(args, "view", "log")
    if view == "auto":
        return bool(getattr(out.out, "isatty", lambda: False)())
    return bool(view == "live")


def ready_banner(
    base: Mapping[str, str],
    mllp: int,
    backing: Backing,
    creds_path: Path,
    creds: Mapping[str, Any],
    console: str | None = None,
) -> str:
    lines = ["", "Revisit is up (profile dev). Ctrl-C stops everything.", ""]
    if console is not None:
        lines.append(f"  {CONSOLE:<11} {console:<24} the staff console: sign in as any staff id")
    lines += [f"  {n:<11} {b:<24} docs {b}/docs" for n, b in base.items()]
    lines += [
        f"  {'metrics':<11} {base['metrics']}/metrics  (Prometheus)",
        f"  {'mllp':<11} {HOST}:{mllp}  (HL7v2 into ingest)",
        f"  {'postgres':<11} {backing.shown_dsn}",
        f"  {'kafka':<11} {backing.bootstrap}",
        f"  {'logs':<11} {creds_path.parent}/postgres.log, broker.log (embedded ones only)",
        f"  {'credentials':<11} {creds_path}  (mode 0600, dev only; `make clean-dev` resets)",
        "",
        # No credential is printed: a banner ends up in terminals' scrollback and in CI logs.
        f"  staff       sign in at the console, or mint a short-lived token ({TOKEN_HOW})",
        f"  EHR feed    the integration API key of {DEMO_CLINIC} is api_key in {creds_path.name}",
        "",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    out = LineWriter()
    restore_signals = interrupt_on_stop_signals()
    stack = contextlib.ExitStack()
    code = 1
    try:
        out.line("revisit", _run(args, stack, out), loud=True)
    except KeyboardInterrupt:
        out.line("revisit", "stopping: services, then broker, then postgres")
        code = 0
    except DevError as exc:
        out.line("revisit", str(exc), loud=True)
    finally:
        # A second Ctrl-C must not cut the ordered stop short; it is bounded (~10 s) anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
        restore_signals()
    out.line("revisit", "stopped" if code == 0 else f"stopped after a failure (exit {code})")
    return code
