"""Which failures pass by themselves, and how long to wait before trying again.

A failure is *transient* when the same work, tried again later unchanged, can succeed: the
database restarting, refusing connections, timing out a statement or a lock, picking a
transaction as a deadlock or serialization victim, running out of connections or memory; a
connection that broke; a pool with nothing to lend; the broker not answering. Everything else
is *deterministic*: the same input fails the same way, so retrying it only blocks the work
behind it (a consumer dead-letters it; a timer is parked).

Retries wait a capped exponential backoff with full jitter, so replicas that failed together do
not come back together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sqlalchemy.exc as sa_exc


class HandlerFailed(Exception):
    """A deterministic failure of one piece of work; the message is PHI-free by construction."""


# SQLSTATE classes and codes that describe the server's condition, not the statement.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})  # connection exception; insufficient resources
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57014",  # query_canceled (statement_timeout)
        "57P01",  # admin_shutdown (pg_terminate_backend, a fast shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (the server is starting up)
        "25006",  # read_only_sql_transaction (a standby while a failover completes)
    }
)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's and asyncpg's wrappers."""
    for candidate in _chain(exc):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """True when trying the same work again later may succeed (see the module docstring)."""
    return any(_transient_one(candidate) for candidate in _chain(exc))


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # The pool had no connection to lend in time; a pool or connection that was disposed.
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | sa_exc.OperationalError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(code, str) and len(code) == 5:
        return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
    return _broker_unavailable(exc) or _asyncpg_connection_error(exc)


def _broker_unavailable(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return True
    # aiokafka marks the errors a client may retry (no leader yet, request timed out, ...).
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def _asyncpg_connection_error(exc: BaseException) -> bool:
    import asyncpg

    if isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError | asyncpg.exceptions.ConnectionFailureError,
    ):
        return True
    # Other interface errors are misuse (two operations at once) unless the connection closed.
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and "closed" in str(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what SQLAlchemy wrapped (``orig``) and its causes, without cycles."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > 10:
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, current.__cause__]
    return seen


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits up to base * 2**n, capped.

    ``delay(n)`` draws in [cap_n / 2, cap_n] rather than [0, cap_n]: a retry never comes back
    at once, and replicas still spread out.
    """

    base: float = 0.5
    cap: float = 30.0

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.base * (2 ** max(0, min(attempt, 30)))))

    def delay(self, attempt: int) -> float:
        top = self.ceiling(attempt)
        return random.uniform(top / 2, top)
