"""Leases as OS file locks, for the processes of one host; the lease thread only.

Each lease is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<data dir>/leases/<key>.lock``,
held by an open file of this process. The kernel releases it when the file is
closed or the process dies (``kill -9`` included), so a standby process on the same
host takes over at its next try. Two hosts do not share it: use Redis or
PostgreSQL there (:mod:`hanji.server.placement` picks the backend).

Not thread-safe: :class:`~hanji.server.placement.Placements` calls it from its one
lease thread (``HanjiLease``) only; nothing here touches the reactor.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import IO


class FileLeases:
    """Leases held as ``flock`` locks on files in ``directory``; lease thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"file locks in {directory}"
        self._held: dict[str, IO[bytes]] = {}

    def _path(self, key: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9_.\-]", "_", key) + ".lock")

    def acquire(self, key: str) -> bool:
        """Take the lease ``key`` if no process holds it; return whether this
        process holds it now (never waits)."""
        if key in self._held:
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        f = open(self._path(key), "a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        except BaseException:
            f.close()
            raise
        # Who holds it, for an operator who looks (the lock is what counts).
        f.truncate(0)
        f.write(f"{os.getpid()}\n".encode())
        f.flush()
        self._held[key] = f
        return True

    def renew(self, key: str) -> bool:
        """Return whether the lease ``key`` is still held: a lock held by an open
        file cannot be lost while the process lives."""
        return key in self._held

    def release(self, key: str) -> None:
        """Give the lease ``key`` up (closing the file releases the lock)."""
        f = self._held.pop(key, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        """Release every lease."""
        for key in list(self._held):
            self.release(key)
