"""``hanji.log`` shared by a supervisor and its workers: one process rotates it.

Several processes each rotating one file by size would rename it under each other's
feet (lines land in ``hanji.log.1`` or in a file already deleted). Under a
supervisor, workers append through a :class:`logging.handlers.WatchedFileHandler`,
which reopens ``hanji.log`` once it was renamed, and never rotate;
:func:`rotate_if_needed` lets the supervisor's own rotating handler rotate it when
the file, written by all, passes ``--log-max-bytes``.

:func:`open_worker_log` runs in a worker (any thread logs; a listener thread writes);
:func:`rotate_if_needed` in the supervisor process, main thread.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from pathlib import Path

from hanji import _logfile


class _QueuedWatchedFile(logging.handlers.QueueHandler):
    """A QueueHandler whose listener writes to a WatchedFileHandler; closing it
    (``logging.shutdown()`` at exit) writes out what is queued."""

    def __init__(self, path: Path) -> None:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        super().__init__(records)
        target = logging.handlers.WatchedFileHandler(path, encoding="utf-8", delay=True)
        target.setFormatter(logging.Formatter(_logfile.FORMAT))
        self.listener: logging.handlers.QueueListener | None = logging.handlers.QueueListener(
            records, target, respect_handler_level=False)
        self.listener.start()

    def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()
            for handler in listener.handlers:
                handler.close()
        super().close()


def open_worker_log(path: Path) -> logging.Handler:
    """Return a handler that appends to ``path`` without rotating it (the supervisor
    does), reopening it after a rotation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _QueuedWatchedFile(path)


def _rotating_handlers() -> list[logging.handlers.RotatingFileHandler]:
    """Return the rotating file handlers behind the root logger's queue handlers."""
    found = []
    for handler in logging.getLogger().handlers:
        listener = getattr(handler, "listener", None)
        for target in getattr(listener, "handlers", ()):
            if isinstance(target, logging.handlers.RotatingFileHandler):
                found.append(target)
    return found


def rotate_if_needed() -> None:
    """Rotate ``hanji.log`` if the workers' and the supervisor's lines together made
    it pass its size limit; the workers reopen the new file by themselves."""
    probe = logging.LogRecord("hanji.supervisor", logging.INFO, __file__, 0, "", None, None)
    for handler in _rotating_handlers():
        handler.acquire()  # the listener thread may be writing a record
        try:
            if handler.shouldRollover(probe):
                handler.doRollover()
        finally:
            handler.release()
