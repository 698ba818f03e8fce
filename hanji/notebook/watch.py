"""``%hanji watch DIR``: this kernel's server reloads applets edited on disk; cell thread.

The reloader of ``hanji serve --reload`` (:mod:`hanji.server.reload`) runs on this
kernel's server, in place only: a kernel cannot restart under its user, so a change
that needs a new process (models, migrations, a new package) is reported under the
next cell with what to do. ``%hanji watch --stop`` stops it, and so does stopping
Hanji (``%hanji stop``, ``%unload_ext hanji``); one watch at a time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from hanji import _errorlog as _errors
from hanji.notebook.session import running_session

log = logging.getLogger("hanji.reload")

WATCH_READY_TIMEOUT = 10.0  # seconds: a hang guard for the watcher's start

# The reloader of this kernel, if one watches (cell thread).
_current: list[Any] = []


def _restart_needed(plan: Any) -> bool:
    """Report changes a kernel cannot apply in place, and return False (the batch's
    other changes are applied); reactor thread (the reloader's ``restart`` hook).
    The next cell shows them (hanji.notebook.hooks)."""
    for applet, reason in zip(plan.restart_applets, plan.restart):
        text = (f"{reason}. %hanji watch reloads Python files and templates in place only: restart "
                "the kernel to load this change (the applet keeps its previous version until then).")
        log.warning(text)
        _errors.report(applet or "hanji", "reloading from disk", text)
    return False


def _start_on_reactor(server: Any, directory: Path) -> Any:
    """Build and start the reloader of ``directory``; reactor thread."""
    from hanji.server.reload import Reloader

    reloader = Reloader(server.reactor, server, [directory], restart=_restart_needed)
    reloader.start()
    return reloader


def stop_watching() -> bool:
    """Stop the watch of this kernel, if any; return whether one was running. Cell
    thread."""
    if not _current:
        return False
    reloader = _current.pop()
    reloader.stop()
    return True


def _stop_with_hanji() -> None:
    """Stop the watch when Hanji stops (a session ``on_stop`` callback); cell thread."""
    stop_watching()


def watch(directory: str | None, stop: bool = False) -> None:
    """Start (or with ``stop``, stop) reloading the applets of ``directory`` from
    disk in this kernel's server; cell thread. Raise UsageError for a folder that
    does not exist or without watchfiles."""
    if stop:
        if directory:
            raise UsageError("%hanji watch --stop takes no folder: it stops the one watch of this kernel.")
        print("Stopped watching for applet edits." if stop_watching() else "No %hanji watch was running.")
        return
    if not directory:
        raise UsageError("%hanji watch DIR: give the applets folder to watch, e.g. %hanji watch ../applets")
    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"%hanji watch: {folder} is not a folder; give the folder that holds applet packages.")
    from hanji.server.reload import WatchfilesMissing, require_watchfiles

    try:
        require_watchfiles()
    except WatchfilesMissing as exc:
        raise UsageError(f"%hanji watch: {exc}") from None
    session = running_session()
    stop_watching()
    if _stop_with_hanji not in session.on_stop:
        session.on_stop.append(_stop_with_hanji)
    reloader = session.call(_start_on_reactor, session.server, folder, what="starting %hanji watch")
    _current.append(reloader)
    if not reloader.watcher.watching.wait(WATCH_READY_TIMEOUT):
        print(f"The file watcher did not report watching {folder} within {WATCH_READY_TIMEOUT:g} s: "
              "edits made now may be missed. If nothing reloads, %hanji watch --stop and watch again.")
    _say_what_is_watched(folder, reloader)


def _say_what_is_watched(folder: Path, reloader: Any) -> None:
    """Print what the watch reloads and what it cannot; cell thread."""
    loaded = sorted(reloader.packages)
    others = sorted(p.name for p in folder.iterdir()
                    if (p / "__init__.py").is_file() and not p.name.startswith(("_", ".")) and p.name not in loaded)
    if loaded:
        print(f"Watching {folder}: edits to {', '.join(loaded)} reload in place (Python files, templates); "
              "a models or migrations change needs a kernel restart. %hanji watch --stop stops.")
    else:
        print(f"Watching {folder}, but no applet of this kernel lives there.")
    if others:
        print(f"Not loaded in this kernel: {', '.join(others)} (restart the kernel with "
              f"HANJI_APPLETS={folder} to load them).")


def watching() -> Path | None:
    """Return the folder this kernel watches, or None; any thread."""
    return _current[0].dirs[0] if _current else None

