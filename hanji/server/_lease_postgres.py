"""Leases as PostgreSQL advisory locks, for processes on any number of hosts
sharing one database; the lease thread only.

Each lease is ``pg_try_advisory_lock(key)`` taken on one connection this process
keeps open for its leases (autocommit, with TCP keepalives). PostgreSQL releases
session-level advisory locks when that connection ends, so when the holder dies
(``kill -9`` included) its locks go with its connection and a standby takes over at
its next try. When the holder's whole host dies or is cut off, no FIN arrives: the
server learns it from its own keepalives on that connection, which this session
sets to give up after about 25 s (the system default waits hours). A renewal checks that the connection still answers; if it broke, every
lease of this process is lost (the server already dropped them) and the next try
reconnects.

Not thread-safe: :class:`~hanji.server.placement.Placements` calls it from its one
lease thread (``HanjiLease``) only.
"""

from __future__ import annotations

import hashlib
from typing import Any

CONNECT_TIMEOUT = 5  # seconds
# The server's keepalives on this session (seconds, probes): a dead client host's
# locks are released after about idle + interval * count.
SERVER_KEEPALIVES = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"


def lock_id(key: str) -> int:
    """Return the advisory lock number (a signed 64-bit integer) of lease ``key``."""
    digest = hashlib.blake2b(f"hanji:lease:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLeases:
    """Leases as advisory locks on the database at ``url``; lease thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = "PostgreSQL advisory locks"
        self._conn: Any = None
        self._held: set[str] = set()

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg

            self._held.clear()  # a new session holds nothing
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   keepalives=1, keepalives_idle=10, keepalives_interval=5,
                                   keepalives_count=3, application_name="hanji-leases")
            try:
                conn.execute(SERVER_KEEPALIVES)  # ignored on a unix socket
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def acquire(self, key: str) -> bool:
        """Take the lease ``key`` if no session holds it; return whether this
        process holds it now (never waits). Raise psycopg's error if the database
        cannot be reached."""
        if key in self._held and self._conn is not None and not self._conn.closed:
            return True
        try:
            row = self._connection().execute("SELECT pg_try_advisory_lock(%s)", (lock_id(key),)).fetchone()
        except Exception:
            self._drop()
            raise
        if row and row[0]:
            self._held.add(key)
            return True
        return False

    def renew(self, key: str) -> bool:
        """Return whether the lease ``key`` is still held: the connection holding
        it still answers."""
        if key not in self._held or self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self._drop()
            return False
        return True

    def release(self, key: str) -> None:
        """Give the lease ``key`` up."""
        if key not in self._held:
            return
        self._held.discard(key)
        try:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id(key),))
        except Exception:
            self._drop()  # the session is gone, and its locks with it

    def close(self) -> None:
        """Release every lease by closing the connection."""
        self._drop()

    def _drop(self) -> None:
        """Forget the connection and every lease (closing it releases them)."""
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
