"""Leases in Redis, for processes on any number of hosts; the lease thread only.

Each lease is redis-py's :class:`redis.lock.Lock` (``SET key token NX PX ttl`` to
take it; a server-side script that checks the token to extend or delete it): the
documented Redis lock pattern for a single instance, with redis-py's own code.
The holder renews it every third of its lifetime; when the holder dies the key
expires after ``ttl`` seconds and a standby takes it at its next try.

While Redis cannot be reached, a lease counts as held until ``ttl`` seconds after
its last successful renewal (its key cannot outlive that), then as lost. What this
does not promise: a holder whose renewals stop for longer than ``ttl`` (a reactor
blocked that long, a network partition) may overlap with the next holder until its
own next renewal tells it the lease is gone.

Not thread-safe: :class:`~hanji.server.placement.Placements` calls it from its one
lease thread (``HanjiLease``) only. Every call is bounded by socket timeouts.
"""

from __future__ import annotations

import time
from typing import Any

# Seconds any one Redis command may take before the attempt counts as failed.
SOCKET_TIMEOUT = 2.0
PREFIX = "hanji:lease:"


class RedisLeases:
    """Leases as Redis locks at ``url``, each living ``ttl`` seconds; lease thread."""

    def __init__(self, url: str, ttl: float, client: Any = None) -> None:
        self.url = url
        self.ttl = ttl
        self.description = f"Redis locks at {_without_password(url)}"
        self._client = client
        self._held: dict[str, tuple[Any, float]] = {}  # key -> (lock, monotonic time of the last renewal)

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=SOCKET_TIMEOUT,
                                                socket_connect_timeout=SOCKET_TIMEOUT)
        return self._client

    def acquire(self, key: str) -> bool:
        """Take the lease ``key`` if no process holds it; return whether this
        process holds it now (never waits). Raise redis' error if Redis cannot be
        reached."""
        if key in self._held:
            return True
        lock = self._redis().lock(PREFIX + key, timeout=self.ttl, thread_local=False)
        # Timed before the call: the key's TTL started no earlier than this.
        asked = time.monotonic()
        if not lock.acquire(blocking=False):
            return False
        self._held[key] = (lock, asked)
        return True

    def renew(self, key: str) -> bool:
        """Extend the lease ``key`` to a full ``ttl``; return whether it is still
        held (False once another process may have it)."""
        from redis.exceptions import LockError, RedisError

        if key not in self._held:
            return False
        lock, renewed = self._held[key]
        asked = time.monotonic()
        try:
            lock.reacquire()
        except LockError:  # LockNotOwnedError: it expired, and maybe another took it
            del self._held[key]
            return False
        except RedisError:
            if time.monotonic() - renewed < self.ttl:
                return True  # Redis unreachable, but the key cannot have expired yet
            del self._held[key]
            return False
        self._held[key] = (lock, asked)
        return True

    def release(self, key: str) -> None:
        """Give the lease ``key`` up (deleting its key only if it is still ours)."""
        from redis.exceptions import RedisError

        held = self._held.pop(key, None)
        if held is not None:
            try:
                held[0].release()
            except RedisError:  # already expired or Redis unreachable: it expires anyway
                pass

    def close(self) -> None:
        """Release every lease and close the connections."""
        for key in list(self._held):
            self.release(key)
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass


def _without_password(url: str) -> str:
    """Return ``url`` with any password masked, for the log."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
