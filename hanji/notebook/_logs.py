"""Logging inside a kernel: to ``<data>/hanji.log``, and errors to ``hanji.errors()``.

A log record written from the reactor or a Django worker would otherwise land in
whichever cell happens to be running (or nowhere). Hanji's, Twisted's and Django's
loggers write to the data dir's log file instead, and the errors that Hanji does not
already record itself are added to the error log the notebook shows after each cell:
Django view exceptions (logger ``django.request``) and failures Twisted logs (an
unhandled error in a Deferred, a resource that raised outside the render contract).
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from hanji import _errorlog as _errors
from hanji import _logfile

_configured: list[logging.Handler] = []


class _ReportDjangoErrors(logging.Handler):
    """Record Django's "Internal Server Error" log records; any thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info:
            return
        request = getattr(record, "request", None)
        path = getattr(request, "path", "?")
        method = getattr(request, "method", "")
        text = "".join(traceback.format_exception(*record.exc_info))
        _errors.report(_applet_for_path(path), f"Django view {method} {path}".replace("  ", " "), text)


def _applet_for_path(path: str) -> str:
    """Return the id of the applet whose Django URLs hold ``path`` (any thread)."""
    from hanji.notebook.session import get_session

    server = get_session().server
    best, best_len = "django", -1
    if server is not None:
        for record in server.registry.active():
            prefix = "/" + record.url_prefix
            if record.urls_module is not None and path.startswith(prefix) and len(prefix) > best_len:
                best, best_len = record.id, len(prefix)
    return best


def _twisted_failures(event: dict[str, Any]) -> None:
    """Record a failure that Twisted logs; runs on the thread that logs it."""
    failure = event.get("log_failure")
    if failure is None:
        return
    from twisted.logger import formatEvent

    from hanji.core._context import current_applet

    applet = current_applet.get()
    where = formatEvent(event).strip().splitlines()[0] if event.get("log_format") else "Twisted"
    _errors.report(str(getattr(applet, "id", None) or "reactor"), where or "Twisted", failure.getTraceback())


def configure(data_dir: Path) -> Path:
    """Route the logs to ``data_dir/hanji.log`` and errors to the error log; return
    the log file's path. Idempotent; any thread but the reactor's."""
    path = data_dir / "hanji.log"
    if _configured:
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    # Rotated by size, written by a listener thread (not the reactor's).
    handler = _logfile.open_log_file(path)
    for name in ("hanji", "twisted", "django"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False  # keep reactor-thread records out of the cells
    logging.getLogger("hanji").setLevel(logging.INFO)
    reporter = _ReportDjangoErrors()
    logging.getLogger("django.request").addHandler(reporter)
    _configured.extend([handler, reporter])

    from twisted.logger import globalLogPublisher

    globalLogPublisher.addObserver(_twisted_failures)  # type: ignore[arg-type]
    return path
