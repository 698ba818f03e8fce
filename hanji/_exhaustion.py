"""Resource exhaustion (a full disk, no file descriptors left): a 503 with the reason,
not a 500 that blames the applet; any thread.

A view or resource that fails because the machine ran out of something did nothing
wrong, and the client may retry later: :func:`exhaustion` recognises such errors
(also when wrapped, as Django wraps SQLite's), and :func:`report` logs the cause
once per burst instead of a traceback per request.
"""

from __future__ import annotations

import errno
import logging
import threading
import time

log = logging.getLogger("hanji.server")

_ERRNOS = {
    errno.ENOSPC: "the server's disk is full",
    errno.EDQUOT: "the server's disk quota is used up",
    errno.EMFILE: "the server process has no file descriptor left",
    errno.ENFILE: "the server's system has no file descriptor left",
}
# What SQLite (through Django) says instead of an errno.
_MESSAGES = {
    "database or disk is full": _ERRNOS[errno.ENOSPC],
    "disk i/o error": "the server's disk failed a write (full, or failing)",
    "too many open files": _ERRNOS[errno.EMFILE],
}

# Seconds during which the same cause is logged once.
BURST = 10.0
_lock = threading.Lock()
_last: dict[str, float] = {}
_counts: dict[str, int] = {}


def exhaustion(exc: BaseException | None) -> str | None:
    """Return why ``exc`` (or what caused it) is resource exhaustion, or None."""
    seen = 0
    while exc is not None and seen < 10:
        seen += 1
        if isinstance(exc, OSError) and exc.errno in _ERRNOS:
            return _ERRNOS[exc.errno]
        text = str(exc).lower()
        for needle, reason in _MESSAGES.items():
            if needle in text:
                return reason
        exc = exc.__cause__ or exc.__context__
    return None


def report(reason: str, where: str) -> None:
    """Log ``reason`` (seen in ``where``) as a WARNING at most once per burst, with
    how many times it happened since the last line."""
    now = time.monotonic()
    with _lock:
        _counts[reason] = _counts.get(reason, 0) + 1
        if now - _last.get(reason, -BURST) < BURST:
            return
        _last[reason] = now
        count, _counts[reason] = _counts[reason], 0
    log.warning("Answering 503: %s (%d request(s) since the last report; latest in %s). Free "
                "disk space or raise the file descriptor limit (ulimit -n).", reason, count, where)


def retry_message(reason: str) -> str:
    """Return the body of the 503 for ``reason``."""
    return f"{reason}; this is not the applet's fault. Try again later."
