"""One log line when a bus backend becomes unreachable, one when it is back; any
thread (a lock guards the state)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("hanji.bus")


class Outage:
    """The reachability of one backend, logged on changes only (never per message)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.down = False
        self.outages = 0  # how many times it went down

    def failed(self, reason: object) -> None:
        """Note that the backend cannot be reached; log it if it was reachable."""
        with self._lock:
            if self.down:
                return
            self.down = True
            self.outages += 1
        log.warning("Broadcast bus %s unreachable (%s): messages reach this process's connections only "
                    "until it is back; reconnecting in the background.", self.name, reason)

    def recovered(self) -> None:
        """Note that the backend answers again; log it if it was down."""
        with self._lock:
            if not self.down:
                return
            self.down = False
        log.warning("Broadcast bus %s reachable again: delivery across processes resumed.", self.name)
