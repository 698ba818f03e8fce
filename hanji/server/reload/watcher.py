"""The file watcher: watchfiles in a dedicated daemon thread, ``HanjiReload``.

watchfiles (Rust's ``notify``, as uvicorn's reloader) groups the events of a burst
(an editor writes a file in several steps) and yields them once the folder has been
quiet for ``step`` ms; the thread hands each batch of changed paths to a callback,
which must not block long (it classifies and hands over to the reactor).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger("hanji.reload")

THREAD_NAME = "HanjiReload"
# A batch is handed over once no event came for STEP_MS (an editor's save is a
# burst of a few events within milliseconds), or after DEBOUNCE_MS at most.
STEP_MS = 100
DEBOUNCE_MS = 1600
# The watcher wakes after this long without events (it then checks nothing but
# the stop flag); the first wake tells that it is watching.
QUIET_MS = 200

MISSING = ("watching applet files needs the 'watchfiles' package, which is not installed: "
           "pip install 'hanji[reload]'")


class WatchfilesMissing(RuntimeError):
    """watchfiles (the extra ``hanji[reload]``) is not installed."""

    def __init__(self) -> None:
        super().__init__(MISSING)


def require_watchfiles() -> Any:
    """Return the watchfiles module; raise :class:`WatchfilesMissing` without it."""
    try:
        import watchfiles
    except ImportError:
        raise WatchfilesMissing() from None
    return watchfiles


class WatchThread:
    """Watch ``paths`` and call ``on_changes(set_of_paths)`` for each batch; the calls
    run on the ``HanjiReload`` thread. :meth:`start` and :meth:`stop` run on any thread.
    ``keep(path)`` says whether a path's change is reported at all."""

    def __init__(self, paths: Sequence[Path], on_changes: Callable[[set[str]], None],
                 keep: Callable[[str], bool], *, step_ms: int = STEP_MS,
                 debounce_ms: int = DEBOUNCE_MS) -> None:
        self._watchfiles = require_watchfiles()
        # watchfiles logs every batch at INFO; Hanji logs what it does with them.
        quiet = logging.getLogger("watchfiles")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
        self.paths = [Path(p) for p in paths]
        self._on_changes = on_changes
        self._keep = keep
        self._step, self._debounce = step_ms, debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Set once watchfiles watches (its first quiet period passed): edits from
        # then on are seen.
        self.watching = threading.Event()

    def start(self) -> None:
        """Start the thread (a daemon: it never keeps the process alive); any thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` s for it; any thread but
        the watcher's own."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread runs (any thread)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        """Watch until stopped; the HanjiReload thread."""
        watched = [str(p) for p in self.paths if p.exists()]

        def keep(change: Any, path: str) -> bool:
            return self._keep(path)

        try:
            # A timeout yields an empty batch: the first one tells that the watch is set up.
            for batch in self._watchfiles.watch(
                    *watched, watch_filter=keep, step=self._step, debounce=self._debounce,
                    stop_event=self._stop, raise_interrupt=False, yield_on_timeout=True,
                    rust_timeout=QUIET_MS):
                self.watching.set()
                if self._stop.is_set():
                    break
                if not batch:
                    continue
                try:
                    self._on_changes({path for _, path in batch})
                except Exception:
                    log.exception("Reloading after a change of %s failed; the watcher goes on.",
                                  ", ".join(sorted(path for _, path in batch)))
        except Exception:
            log.exception("The applet file watcher stopped (watching %s); edits are no longer "
                          "reloaded: restart to watch again.", ", ".join(watched))
