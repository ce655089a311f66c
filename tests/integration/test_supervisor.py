"""The dev supervisor with real (tiny) child processes: output, deaths, restarts, stopping."""

from __future__ import annotations

import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from revisit.dev import check_port_free, check_ports, planned_ports
from revisit.embedded.ports import child_preexec, pid_alive
from revisit.stack import DevError, save_credentials
from revisit.supervisor import ChildSpec, LineWriter, RestartPolicy, Supervisor

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


SLEEPER = py("""
    import time
    print("sleeping")
    time.sleep(60)
""")
STUBBORN = py("""
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM")
    time.sleep(60)
""")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def make(
    specs: list[ChildSpec], policy: RestartPolicy | None = None
) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    return Supervisor(specs, writer=LineWriter(out, width=10, color=False), policy=policy), out


def gone(pid: int) -> bool:
    return not pid_alive(pid)


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for sup in started:  # a failing assertion must not leave children running
        sup.stop(grace=0.5)


def test_child_lines_arrive_prefixed_while_the_children_still_run(
    supervisors: list[Supervisor],
) -> None:
    sup, out = make(
        [
            ChildSpec("alpha", py('print("one"); print("two"); import time; time.sleep(60)')),
            ChildSpec("beta", py('import sys; print("oops", file=sys.stderr); input()')),
        ]
    )
    supervisors.append(sup)
    sup.start()
    # No flush in the children: PYTHONUNBUFFERED and line reads make the lines arrive at once.
    wait_for(lambda: "oops" in out.getvalue() and "two" in out.getvalue())
    lines = out.getvalue().splitlines()
    assert "[alpha     ] one" in lines
    assert "[alpha     ] two" in lines
    assert "[beta      ] oops" in lines
    assert set(sup.pids) == {"alpha", "beta"}
    assert sup.poll() is None


def test_a_child_exiting_with_code_3_is_reported_with_its_name_and_code(
    supervisors: list[Supervisor],
) -> None:
    crash = py('print("about to fail"); raise SystemExit(3)')
    sup, out = make([ChildSpec("crasher", crash, restart=False)])
    supervisors.append(sup)
    sup.start()
    failure = sup.run(interval=0.02)
    assert failure is not None and "crasher" in failure and "code 3" in failure
    (death,) = sup.deaths
    assert (death.name, death.returncode, death.action) == ("crasher", 3, "fatal")
    assert death.last_lines == ("about to fail",)
    assert "[supervisor] crasher exited with code 3" in out.getvalue()
    assert "  | about to fail" in out.getvalue()


def test_a_dying_child_is_restarted_with_backoff_until_the_budget_is_spent(
    supervisors: list[Supervisor],
) -> None:
    policy = RestartPolicy(max_restarts=2, backoff=(0.2, 0.4))
    sup, out = make([ChildSpec("flaky", py("raise SystemExit(3)"))], policy=policy)
    supervisors.append(sup)
    started = time.monotonic()
    sup.start()
    failure = sup.run(interval=0.02)
    assert failure is not None and "gave up after 2 restarts" in failure
    assert [d.action for d in sup.deaths] == ["restart", "restart", "fatal"]
    assert time.monotonic() - started >= 0.6  # both backoff delays were waited
    assert "will restart flaky in 0.2 s (1 of 2)" in out.getvalue()
    assert "restarting flaky (restart 2 of 2)" in out.getvalue()


def test_a_child_that_is_not_required_is_reported_and_the_stack_keeps_running(
    supervisors: list[Supervisor],
) -> None:
    sup, _ = make(
        [
            ChildSpec("worker", SLEEPER),
            ChildSpec("oneshot", py("print('done')"), restart=False, required=False),
        ]
    )
    supervisors.append(sup)
    sup.start()
    wait_for(lambda: sup.poll() is None and bool(sup.deaths))
    assert sup.deaths[0].action == "reported"
    assert set(sup.pids) == {"worker"}


def test_a_probe_that_fails_twice_stops_the_stack(supervisors: list[Supervisor]) -> None:
    sup, out = make([ChildSpec("worker", SLEEPER)])
    supervisors.append(sup)
    sup.add_probe("broker", lambda: False, interval=0.0)
    sup.start()
    assert sup.run(interval=0.01) == "broker died"
    assert "broker is no longer reachable" in out.getvalue()


def test_stop_kills_a_child_that_ignores_sigterm_and_leaves_no_process(
    supervisors: list[Supervisor],
) -> None:
    grandparent = py("""
        import subprocess, sys, time
        g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("grandchild", g.pid)
        time.sleep(60)
    """)
    sup, out = make(
        [
            ChildSpec("calm", SLEEPER),
            ChildSpec("stubborn", STUBBORN),
            ChildSpec("parent", grandparent),
        ]
    )
    supervisors.append(sup)
    sup.start()
    wait_for(lambda: "ignoring SIGTERM" in out.getvalue() and "grandchild" in out.getvalue())
    grandchild = int(sup.last_lines("parent")[-1].split()[-1])
    pids = [*sup.pids.values()]
    started = time.monotonic()
    sup.stop(grace=1.0)
    assert time.monotonic() - started < 2.0
    assert "stubborn ignored SIGTERM for 1 s; killing it" in out.getvalue()
    assert sup.pids == {}
    assert_gone(pids)
    wait_for(lambda: not pid_alive(grandchild), timeout=2.0)  # killed with its process group


SCRIPT = """
import json, sys
from revisit.embedded.ports import child_preexec
from revisit.supervisor import ChildSpec, Supervisor, interrupt_on_stop_signals

interrupt_on_stop_signals()
sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
stubborn = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
sup = Supervisor([ChildSpec("one", sleeper), ChildSpec("two", stubborn)], grace=1.0,
                 preexec_fn=child_preexec())
try:
    sup.start()
    print("PIDS " + json.dumps(list(sup.pids.values())), flush=True)
    sup.run()
except KeyboardInterrupt:
    pass
finally:
    sup.stop()
sys.exit(0)
"""


def run_script(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "supervise.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    parent_death = child_preexec()

    def like_a_background_job() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell hands a `cmd &` job
        parent_death()

    proc = subprocess.Popen(
        [PY, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=like_a_background_job,
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 10
    # Waits out the whole deadline: a busy machine can take seconds to start Python.
    while time.monotonic() < deadline and proc.poll() is None:
        if not selector.select(timeout=0.5):
            continue
        line = proc.stdout.readline()
        if line.startswith("PIDS "):
            return proc, json.loads(line[5:])
    proc.kill()
    raise AssertionError("the supervisor script did not start its children")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_children_and_exits_0_within_10_seconds(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, pids = run_script(tmp_path)
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0
    for pid in pids:
        wait_for(partial(gone, pid), timeout=1.0)


def test_children_die_with_a_supervisor_that_is_killed_outright(tmp_path: Path) -> None:
    proc, pids = run_script(tmp_path)
    proc.kill()
    proc.wait(timeout=5)
    for pid in pids:  # the parent-death signal, since nobody was left to stop them
        wait_for(partial(gone, pid), timeout=3.0)


def test_a_taken_port_is_reported_with_the_env_var_that_moves_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(DevError) as err:
            check_port_free(port, "REVISIT_INGEST_PORT", "ingest")
    message = str(err.value)
    assert f"port {port} for ingest is already in use" in message
    assert "REVISIT_INGEST_PORT" in message


def test_ports_come_from_env_overrides_and_clashes_are_refused() -> None:
    plan = planned_ports({"REVISIT_SEGMENTER_PORT": "9102", "REVISIT_MLLP_PORT": "9103"})
    assert plan["ingest"] == (8001, "REVISIT_INGEST_PORT")
    assert plan["segmenter"] == (9102, "REVISIT_SEGMENTER_PORT")
    assert plan["mllp"] == (9103, "REVISIT_MLLP_PORT")
    with pytest.raises(DevError, match=r"REVISIT_METRICS_PORT=.*not a TCP port"):
        planned_ports({"REVISIT_METRICS_PORT": "http"})
    with pytest.raises(DevError, match="both want port 9200; change REVISIT_MLLP_PORT"):
        check_ports({"ingest": (9200, "REVISIT_INGEST_PORT"), "mllp": (9200, "REVISIT_MLLP_PORT")})


def test_dev_credentials_are_written_readable_only_by_their_owner(tmp_path: Path) -> None:
    path = tmp_path / "dev-credentials.json"
    save_credentials(path, {"api_key": "rvk_test"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"api_key": "rvk_test"}


def test_one_lock_keeps_lines_from_many_threads_whole() -> None:
    out = io.StringIO()
    writer = LineWriter(out, width=6, color=False)

    def burst(name: str) -> None:
        for _ in range(200):
            writer.line(name, "x" * 200)

    threads = [threading.Thread(target=burst, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert all(line.endswith("] " + "x" * 200) for line in lines)
