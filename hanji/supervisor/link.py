"""The worker's end of its pipe to the supervisor; a worker process, reactor thread.

``hanji serve --worker-link LISTEN_FD,PIPE_FD`` (set by the supervisor, never by
hand) serves the inherited listening socket and writes to the pipe: ``R`` once
the server listens with its applets active, ``H`` from a ``LoopingCall`` on the
reactor. A reactor blocked by an applet stops the heartbeat, and the supervisor
kills and replaces the worker after ``--worker-timeout`` seconds; before the kill
it sends SIGUSR2, on which :mod:`faulthandler` writes every thread's stack to
stderr, so the log shows what blocked. A pipe the supervisor closed (it died)
stops the worker: no orphan serves on.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
from typing import Any

from twisted.internet.task import LoopingCall

from hanji import _config
from hanji.supervisor._worker import HEARTBEAT, READY

log = logging.getLogger("hanji.worker")


def parse(value: str) -> tuple[int, int]:
    """Return ``(listen_fd, pipe_fd)`` from the ``--worker-link`` value; raise ValueError."""
    try:
        listen_fd, pipe_fd = (int(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"--worker-link {value!r} is not LISTEN_FD,PIPE_FD: it is set by the "
                         "supervisor of `hanji serve --workers N`, not by hand.") from None
    return listen_fd, pipe_fd


def heartbeat_interval(worker_timeout: float) -> float:
    """Return how often a worker beats: several times within ``worker_timeout``."""
    return max(0.05, min(1.0, worker_timeout / 5))


def dump_stacks_on_sigusr2() -> None:
    """Write every thread's stack to stderr on SIGUSR2, which the supervisor sends
    before it kills a silent worker; main thread, as early as the worker starts
    (a start-up that hangs in Django or an applet's import is explained too)."""
    faulthandler.register(signal.SIGUSR2, all_threads=True)


class SupervisorLink:
    """Tell the supervisor that this worker is ready and alive; reactor thread."""

    def __init__(self, reactor: Any, pipe_fd: int, interval: float) -> None:
        self.reactor = reactor
        self.pipe_fd = pipe_fd
        os.set_blocking(pipe_fd, False)
        self._beat = LoopingCall(self._send, HEARTBEAT)
        self._beat.clock = reactor
        self.interval = interval
        self._lost = False

    def start(self) -> None:
        """Start the heartbeat; reactor thread, once running."""
        self._beat.start(self.interval, now=True)

    def ready(self) -> None:
        """Say this worker serves with its applets active; reactor thread."""
        self._send(READY)

    def stop(self) -> None:
        """Stop the heartbeat (the reactor is stopping); reactor thread."""
        if self._beat.running:
            self._beat.stop()

    def _send(self, message: bytes) -> None:
        """Write one message byte; a full pipe drops it (the supervisor reads late,
        the next beat will do), a closed one means the supervisor died: stop."""
        if self._lost:
            return
        try:
            os.write(self.pipe_fd, message)
        except BlockingIOError:
            pass
        except OSError as exc:
            self._lost = True
            self.stop()
            log.error("The supervisor (pid %s) is gone (%s): this worker stops.",
                      _config.supervisor_pid() or "?", exc)
            if self.reactor.running:
                self.reactor.stop()
