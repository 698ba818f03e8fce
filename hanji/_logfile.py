"""Logs that cannot fill the disk nor stall the reactor; any thread.

- :func:`open_log_file` writes ``hanji.log`` through a queue: a record is queued by
  the thread that logs it (the reactor's, often) and written by a listener thread,
  into a file rotated by size with a bounded number of old files
  (``hanji serve --log-max-bytes``, ``--log-backups``).
- :func:`short` cuts a client-chosen value (a path, a header) to a short prefix and
  says how long it was, so one request cannot write kilobytes into the log.
- :class:`RefusalLog` logs refused requests at most a few per second; the rest are
  counted and summed up in one line, as the stall watchdog does for repeats.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading
import time
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
# The process id tells apart the kernels (and servers) sharing one data dir's log.
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(threadName)s] %(message)s"


def short(value: object, limit: int = 120) -> str:
    """Return ``value`` as text cut to ``limit`` characters, saying how long it was."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


class _QueuedFile(logging.handlers.QueueHandler):
    """A QueueHandler that owns its listener: closing it (``logging.shutdown()`` at
    exit does) writes out what is queued and stops the listener thread."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord],
                 listener: logging.handlers.QueueListener) -> None:
        super().__init__(records)
        self.listener = listener

    def close(self) -> None:
        listener, self.listener = self.listener, None  # type: ignore[assignment]
        if listener is not None:
            listener.stop()
            for handler in listener.handlers:
                handler.close()
        super().close()


def open_log_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                  backups: int = DEFAULT_BACKUPS) -> logging.Handler:
    """Return a handler that queues records for ``path``, written by a listener
    thread into a file rotated at ``max_bytes``, keeping ``backups`` old files.
    Closing the handler (``logging.shutdown()`` at exit) flushes the queue."""
    if max_bytes <= 0 or backups < 0:
        raise ValueError(f"log rotation needs max_bytes > 0 and backups >= 0, not {max_bytes} and {backups}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    target = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                  encoding="utf-8", delay=True)
    target.setFormatter(logging.Formatter(FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, target, respect_handler_level=False)
    listener.start()
    return _QueuedFile(records, listener)


class RefusalLog:
    """Log refused requests, at most ``burst`` lines per ``window`` seconds; count
    the others and log how many there were (by status) once the window is over.
    Thread-safe."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 10.0) -> None:
        self.logger = logger
        self.burst = burst
        self.window = window
        self._lock = threading.Lock()
        self._started = 0.0
        self._logged = 0
        self._skipped: dict[int, int] = {}

    def refused(self, status: int, message: str, *args: object) -> None:
        """Log ``message % args`` (an INFO line) unless the burst is spent."""
        now = time.monotonic()
        summary = None
        with self._lock:
            if now - self._started >= self.window:
                if self._skipped:
                    summary = ", ".join(f"{n} × {code}" for code, n in sorted(self._skipped.items()))
                self._started, self._logged, self._skipped = now, 0, {}
            log_it = self._logged < self.burst
            if log_it:
                self._logged += 1
            else:
                self._skipped[status] = self._skipped.get(status, 0) + 1
        if summary:
            self.logger.info("%s more refused requests in the last %g s were not logged one by one.",
                             summary, self.window)
        if log_it:
            self.logger.info(message, *args)
