"""Run named child processes: prefixed live output, death reports, restarts, ordered stop.

Generic on purpose (no Revisit knowledge) so it can be tested with tiny dummy children.

Restart policy: a child that dies while the stack runs is reported (name, exit code, last lines)
and restarted after a backoff (1 s, 2 s, 4 s), at most three times; a child that stayed up for
`stable_after` seconds before dying starts a fresh budget. When the budget is spent, or the child
is not restartable, a `required` child makes `poll()` return a failure reason so the caller stops
everything and exits non-zero; a child that is not required is only reported.

Threading: call every method from one long-lived thread (normally the main thread). Children get
a parent-death signal through `preexec_fn`, which the kernel ties to the *thread* that forked
them, so a child started from a short-lived thread would die with that thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

_COLORS = ("36", "32", "33", "34", "35", "96", "92", "93", "94", "95")
_SELF = "supervisor"


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)  # added on top of the base environment
    cwd: str | None = None
    restart: bool = True
    required: bool = True  # its final death stops the whole stack


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 3
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0)
    stable_after: float = 30.0

    def delay(self, attempt: int) -> float:
        return self.backoff[min(attempt, len(self.backoff) - 1)] if self.backoff else 0.0


@dataclass(frozen=True)
class Death:
    name: str
    pid: int
    returncode: int  # negative: killed by that signal (subprocess convention)
    runtime: float
    last_lines: tuple[str, ...]
    action: str  # "restart", "fatal" or "reported"


class LineWriter:
    """Writes whole lines with a padded `[name]` prefix; one lock so lines never interleave."""

    def __init__(self, out: IO[str] | None = None, width: int = 10, color: bool | None = None):
        self.out = out if out is not None else sys.stdout
        self.width = width
        if color is None:
            isatty = getattr(self.out, "isatty", lambda: False)
            color = bool(isatty()) and not os.environ.get("NO_COLOR")
        self.color = color
        self._lock = threading.Lock()
        self._palette: dict[str, str] = {}

    def line(self, name: str, text: str, *, loud: bool = False) -> None:
        tag = f"[{name.ljust(self.width)}]"
        if self.color:
            code = (
                "1;31"
                if loud
                else self._palette.setdefault(name, _COLORS[len(self._palette) % len(_COLORS)])
            )
            tag = f"\x1b[{code}m{tag}\x1b[0m"
        with self._lock:
            self.out.write(f"{tag} {text}\n")
            self.out.flush()

    def block(self, text: str) -> None:
        """Unprefixed text (e.g. a banner) that child lines cannot split."""
        with self._lock:
            self.out.write(text if text.endswith("\n") else text + "\n")
            self.out.flush()


class _Child:
    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.restart_at: float | None = None
        self.lines: deque[str] = deque(maxlen=200)
        self.reader: threading.Thread | None = None


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        writer: LineWriter | None = None,
        policy: RestartPolicy | None = None,
        grace: float = 5.0,
        preexec_fn: Callable[[], None] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        width = max([len(_SELF), *map(len, names)])
        self.writer = writer or LineWriter(width=width)
        self.policy = policy or RestartPolicy()
        self.grace = grace
        self.preexec_fn = preexec_fn
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.deaths: list[Death] = []
        self._children = {s.name: _Child(s) for s in specs}
        self._probes: list[tuple[str, Callable[[], bool], float, list[float]]] = []

    # -- starting -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every child in the order given."""
        for child in self._children.values():
            self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        env = {**self.base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(  # noqa: S603 - argv comes from the caller's specs
            list(spec.argv),
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one pipe keeps stdout/stderr lines in their real order
            # Own process group: a terminal Ctrl-C reaches only the supervisor, which then stops
            # children in order; stop() can also signal a child's whole group.
            start_new_session=True,
            preexec_fn=self.preexec_fn,  # parent-death signal (prctl) only
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.lines = deque(maxlen=200)  # reports quote this run's lines, not a previous one's
        child.reader = threading.Thread(
            target=self._pump, args=(spec.name, child.proc, child.lines), daemon=True
        )
        child.reader.start()

    def _pump(self, name: str, proc: subprocess.Popen[bytes], lines: deque[str]) -> None:
        assert proc.stdout is not None
        # readline on the raw pipe returns as soon as a line is complete: no buffering stalls.
        for raw in iter(proc.stdout.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            lines.append(text)
            self.writer.line(name, text)
        proc.stdout.close()

    # -- watching -----------------------------------------------------------------------------

    def add_probe(self, name: str, alive: Callable[[], bool], interval: float = 2.0) -> None:
        """Watch something this supervisor did not start (e.g. a database); two failed checks in
        a row make poll() return a failure, because such a thing cannot be restarted here."""
        self._probes.append((name, alive, interval, [time.monotonic(), 0.0]))

    def poll(self) -> str | None:
        """Reap dead children, report them, apply the restart policy. A failure reason means the
        whole stack must stop."""
        now = time.monotonic()
        for child in self._children.values():
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                child.proc = None
                failure = self._on_death(child, proc, now)
                if failure:
                    return failure
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self.say(
                    f"restarting {child.spec.name} (restart {child.restarts} of "
                    f"{self.policy.max_restarts})"
                )
                self._spawn(child)
        for name, alive, interval, state in self._probes:
            if now - state[0] < interval:
                continue
            state[0] = now
            state[1] = 0.0 if alive() else state[1] + 1
            if state[1] >= 2:
                self.say(f"{name} is no longer reachable", loud=True)
                return f"{name} died"
        return None

    def _on_death(self, child: _Child, proc: subprocess.Popen[bytes], now: float) -> str | None:
        spec, code = child.spec, proc.returncode
        # Leftovers of its group (e.g. a worker) go too; they could also hold the pipe open.
        _kill_group(proc.pid, signal.SIGKILL)
        if child.reader is not None:
            child.reader.join(timeout=0.5)  # let its last lines (often the traceback) print first
        runtime = now - child.started_at
        if runtime >= self.policy.stable_after:
            child.restarts = 0
        if spec.restart and child.restarts < self.policy.max_restarts:
            action = "restart"
        elif spec.required:
            action = "fatal"
        else:
            action = "reported"
        last = tuple(child.lines)[-10:]
        self.deaths.append(Death(spec.name, proc.pid, code, runtime, last, action))
        self.say(f"{spec.name} exited with {_describe(code)} after {runtime:.1f} s", loud=True)
        for text in last:
            self.say(f"  | {text}", loud=True)
        if action == "restart":
            delay = self.policy.delay(child.restarts)
            child.restarts += 1
            child.restart_at = now + delay
            self.say(
                f"will restart {spec.name} in {delay:g} s "
                f"({child.restarts} of {self.policy.max_restarts})"
            )
            return None
        if action == "fatal":
            why = f"gave up after {child.restarts} restarts" if spec.restart else "not restartable"
            return f"{spec.name} exited with {_describe(code)} ({why})"
        return None

    def run(self, stop: threading.Event | None = None, interval: float = 0.1) -> str | None:
        """Poll until `stop` is set (returns None) or the stack fails (returns the reason)."""
        stop = stop or threading.Event()
        while not stop.wait(interval):
            failure = self.poll()
            if failure:
                return failure
        return None

    # -- stopping -----------------------------------------------------------------------------

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM every child in reverse start order, share one grace period, SIGKILL the rest."""
        grace = self.grace if grace is None else grace
        running = [c for c in reversed(self._children.values()) if c.proc is not None]
        for child in self._children.values():
            child.restart_at = None
        for child in running:
            assert child.proc is not None
            _kill_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.spec.name} ignored SIGTERM for {grace:g} s; killing it")
        for child in running:
            assert child.proc is not None
            _kill_group(child.proc.pid, signal.SIGKILL)  # also any grandchild left in the group
            child.proc.wait()
            if child.reader is not None:
                child.reader.join(timeout=0.5)
            child.proc = None

    # -- reading state ------------------------------------------------------------------------

    def say(self, text: str, *, loud: bool = False) -> None:
        self.writer.line(_SELF, text, loud=loud)

    def last_lines(self, name: str, n: int = 20) -> list[str]:
        return list(self._children[name].lines)[-n:]

    @property
    def pids(self) -> dict[str, int]:
        return {n: c.proc.pid for n, c in self._children.items() if c.proc is not None}


def interrupt_on_stop_signals() -> Callable[[], None]:
    """Make Ctrl-C and SIGTERM both raise KeyboardInterrupt in the main thread (and cancel cleanly
    inside asyncio.run), so both take one ordered stop path. SIGINT is set explicitly because a
    process started in the background by a shell inherits it ignored. Returns a restore function."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)

    return restore


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _kill_group(pid: int, sig: int) -> None:
    # The child leads its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
