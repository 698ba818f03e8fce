"""The error log: every applet error Hanji caught, kept for the user to read.

Errors from ``on_activate``, render methods and errbacks are logged with their
traceback *and* appended here, so a notebook can show them in the next cell
(``hanji.errors()``) instead of losing them in a log file. Thread-safe.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque


@dataclasses.dataclass(frozen=True)
class AppletErrorRecord:
    """One caught error: which applet, where, when and the full traceback."""

    applet_id: str
    where: str
    traceback: str
    when: float
    seq: int

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        return f"[{stamp}] applet '{self.applet_id}' in {self.where}:\n{self.traceback}"


_lock = threading.Lock()
_log: deque[AppletErrorRecord] = deque(maxlen=200)
_seq = 0


def report(applet_id: str, where: str, traceback_text: str) -> AppletErrorRecord:
    """Record an error (any thread) and return the record."""
    global _seq
    with _lock:
        _seq += 1
        record = AppletErrorRecord(applet_id, where, traceback_text, time.time(), _seq)
        _log.append(record)
    return record


def report_failure(applet_id: str, where: str, text: str, message: str | None = None) -> AppletErrorRecord:
    """Log an applet's error with its traceback under ``hanji.applet.<id>`` and
    record it for the notebook (any thread)."""
    logging.getLogger(f"hanji.applet.{applet_id}").error(
        "%s:\n%s", message or f"Applet '{applet_id}': {where} failed", text
    )
    return report(applet_id, where, text)


def exception_line(text: str | None) -> str:
    """Return the line of a traceback that names the exception (its last non-blank
    line: ``ValueError: bad``), or '' for no text; any thread."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


# Frames of the machinery between Hanji and applet code (crochet, Deferreds, thread
# pools, Hanji itself): left out of what a notebook user is shown first.
_MACHINERY = ("/twisted/", "/crochet/", "/hanji/", "/threading.py", "/concurrent/", "/contextvars",
              "/asyncio/", "/ipykernel/", "/IPython/")


def user_frames(text: str) -> str:
    """Return a traceback text with only the frames of the user's code (notebook
    cells, applet packages) and the exception line, as IPython shows a cell's error;
    ``text`` itself if it has no such frames. Any thread."""
    lines = text.rstrip().splitlines()
    kept: list[str] = []
    i, skipping = 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("  File "):
            skipping = any(part in line for part in _MACHINERY)
            if not skipping:
                kept.append(line)
        elif line.startswith("    ") and not line.startswith("  File "):
            if not skipping:
                kept.append(line)
        elif line.startswith("Traceback") or line.startswith("During handling") or line.startswith(
                "The above exception") or not line.strip():
            pass
        else:
            skipping = False
        i += 1
    if not kept:
        return text.rstrip()
    return "\n".join(["Traceback (most recent call last), your code only:", *kept, exception_line(text)])


def all_errors(applet_id: str | None = None) -> list[AppletErrorRecord]:
    """Return recorded errors, oldest first, optionally for one applet (any thread)."""
    with _lock:
        records = list(_log)
    if applet_id is not None:
        records = [r for r in records if r.applet_id == applet_id]
    return records


def since(seq: int) -> list[AppletErrorRecord]:
    """Return the errors recorded after sequence number ``seq`` (any thread)."""
    with _lock:
        return [r for r in _log if r.seq > seq]


def last_seq() -> int:
    """Return the sequence number of the newest error (0 if none)."""
    with _lock:
        return _seq


def clear() -> None:
    """Forget every recorded error (any thread)."""
    with _lock:
        _log.clear()
