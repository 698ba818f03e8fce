"""Reload applets from disk when their files change; reactor thread (the watcher's
batches arrive from ``HanjiReload`` through ``callFromThread``).

Each batch is classified (:mod:`hanji.server.reload.changes`) on the watcher's thread,
since that looks at files, then applied on the reactor in order, one batch at a
time: changed packages are imported again in the Django pool
(:mod:`hanji.server.reload.reimport`) and swapped in with the server's own hot swap
(:meth:`~hanji.server.lifecycle.AppletLifecycle.activate_record`, as a notebook
re-run does: same port, other applets untouched, requests in flight finish on the
old code); a template change resets Django's template loaders in the pool; a change
that cannot be applied in place calls ``restart`` with the reasons.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from twisted.internet import defer

from hanji import _errorlog as _errors
from hanji._threads import assert_not_reactor_thread, assert_reactor_thread
from hanji.server.reload import changes
from hanji.server.reload.reimport import ReloadFailed, reimport_package, reset_template_loaders
from hanji.server.reload.watcher import WatchThread

log = logging.getLogger("hanji.reload")


def restart_by_supervisor(plan: changes.Plan) -> bool:
    """Ask the supervisor of ``hanji serve`` for a rolling restart (SIGHUP to
    ``$HANJI_SUPERVISOR_PID``: a new process is ready before this one stops
    listening) for the changes of ``plan.restart``; without one, log what to do.
    Return True if the supervisor was asked. Any thread."""
    from hanji import _config

    pid = _config.supervisor_pid()
    why = "; ".join(plan.restart)
    if pid is not None:
        log.warning("%s: restarting the server process (the listening socket stays open).", why)
        try:
            os.kill(pid, signal.SIGHUP)
            return True
        except OSError as exc:
            log.error("Cannot reach the supervisor (pid %s): %s.", pid, exc)
    log.error("%s: this change needs a restart, and no supervisor runs this process "
              "(hanji serve --reload starts one); restart hanji serve by hand. "
              "The previous version keeps serving.", why)
    return False


def settings_files() -> list[Path]:
    """Return the file of a project's Django settings module (none for Hanji's own);
    any thread, after Django's set-up."""
    from hanji import _config

    name = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path or name == _config.DJANGO_SETTINGS:
        return []
    return [Path(path).resolve()]


class Reloader:
    """Watch the applet directories of ``server`` and reload what changes.

    ``dirs`` are the folders watched (the server's applet directories by default);
    ``restart(plan)`` is called, on the reactor thread, for a batch with changes
    that need a new process (``plan.restart`` says which and why); it returns True
    if a new process is coming (the batch's other changes are then left to it),
    False to apply them in place anyway. Build and :meth:`start` on the reactor
    thread.
    """

    def __init__(self, reactor: Any, server: Any, dirs: Sequence[Path] | None = None, *,
                 data_dir: Path | None = None,
                 restart: Callable[[changes.Plan], bool] = restart_by_supervisor,
                 step_ms: int | None = None) -> None:
        self.reactor = reactor
        self.server = server
        self.dirs = [Path(d).resolve() for d in (dirs if dirs is not None else server.setup.applet_dirs)]
        self.data_dir = (data_dir or server.setup.data_dir).resolve()
        self._restart = restart
        self._settings = settings_files()
        self._lock = defer.DeferredLock()
        kw = {"step_ms": step_ms} if step_ms is not None else {}
        self.watcher = WatchThread([*self.dirs, *self._settings], self._changed, self._keep, **kw)
        # Applets reloaded so far; reactor thread.
        self.reloads = 0

    @property
    def packages(self) -> dict[str, Path]:
        """The applet packages installed in Django that live in the watched folders;
        any thread but the reactor's (it resolves paths on disk)."""
        found = {}
        for name, path in self.server.setup.packages.items():
            root = Path(path).resolve()
            if any(d == root.parent or d in root.parents for d in self.dirs):
                found[name] = root
        return found

    def start(self) -> None:
        """Start watching; reactor thread."""
        assert_reactor_thread("Reloader.start()")
        self.watcher.start()
        log.info("Reloading applets when their files change: watching %s.",
                 ", ".join(str(d) for d in self.dirs))

    def stop(self) -> None:
        """Stop watching (the watcher thread ends within its quiet period); any thread."""
        self.watcher.stop(timeout=0)

    def _keep(self, path: str) -> bool:
        """Whether a change of ``path`` is reported at all; the watcher's thread."""
        return not changes.ignored(path, self.data_dir)

    def _changed(self, paths: set[str]) -> None:
        """Classify a batch and hand its plan to the reactor; the watcher's thread."""
        seen = time.perf_counter()
        self.reactor.callFromThread(self.apply, self.classify(paths), seen)

    def classify(self, paths: set[str]) -> changes.Plan:
        """Return the plan of a batch of changed ``paths``; any thread but the
        reactor's (it looks at files: a new package's ``__init__.py``, resolved paths)."""
        assert_not_reactor_thread("Reloader.classify()")
        return changes.classify(paths, self.packages, applet_dirs=self.dirs,
                                settings_files=self._settings, data_dir=self.data_dir)

    def apply(self, plan: changes.Plan, seen: float | None = None) -> defer.Deferred[changes.Plan | None]:
        """Apply one batch's ``plan``, after the batches before it; reactor thread.
        Fire with the plan applied, or None (logged with its traceback) if applying
        it failed."""
        assert_reactor_thread("Reloader.apply()")

        def failed(failure: Any) -> None:
            log.error("Applying the changes of %s failed; the previous versions keep serving, save "
                      "again to retry:\n%s", ", ".join(map(str, [*plan.packages, *plan.templates, *plan.restart])),
                      failure.getTraceback())

        done = self._lock.run(self._apply, plan, seen if seen is not None else time.perf_counter())
        return done.addErrback(failed)

    @defer.inlineCallbacks
    def _apply(self, plan: changes.Plan, seen: float) -> Any:
        """Apply ``plan``: restart, or templates then packages; reactor thread,
        one batch at a time (under the lock)."""
        if plan.nothing and not plan:
            log.debug("Changed, nothing to reload: %s", ", ".join(map(str, plan.nothing)))
        if plan.restart and self._restart(plan):
            return plan  # the new process loads every change of the batch
        if plan.templates:
            count = yield self.server.call_in_pool(reset_template_loaders)
            log.info("Templates changed (%s): %d Django template loader(s) reset.",
                     ", ".join(str(p) for p in plan.templates), count)
        for package, paths in sorted(plan.packages.items()):
            yield self._reload_package(package, plan.roots[package], paths, seen)
        return plan

    @defer.inlineCallbacks
    def _reload_package(self, package: str, root: Path, paths: list[Path], seen: float) -> Any:
        """Import ``package`` (folder ``root``) again in the pool and swap it in;
        reactor thread. A failed import is reported and leaves the old version serving."""
        try:
            record = yield self.server.call_in_pool(reimport_package, package, root, paths)
        except ReloadFailed as exc:
            _errors.report_failure(package, f"reloading {exc.filename}, line {exc.lineno}", exc.text, str(exc))
            return None
        except Exception:
            _errors.report_failure(package, "reloading from disk", traceback.format_exc(),
                                   f"Applet '{package}' was not reloaded; the previous version keeps serving")
            return None
        try:
            yield self.server.activate_record(record)
        except Exception:
            return None  # the lifecycle logged and recorded the failed activation
        self.reloads += 1
        log.info("Applet '%s' reloaded from disk (version %d) in %.0f ms: %s.", record.id, record.version,
                 (time.perf_counter() - seen) * 1000, ", ".join(p.name for p in paths))
        return record


def watch_server(reactor: Any, server: Any, timeout: float = 10.0) -> defer.Deferred[Reloader]:
    """Reload ``server``'s applets when their files change until the reactor stops
    (``hanji serve --reload``); reactor thread. Fire once the watcher watches, so
    an edit made after the server says it is ready is seen."""
    from twisted.internet.threads import deferToThread

    assert_reactor_thread("watch_server()")
    reloader = Reloader(reactor, server)
    reloader.start()
    reactor.addSystemEventTrigger("before", "shutdown", reloader.stop)

    def watching(ready: bool) -> Reloader:
        if not ready:
            log.warning("The applet file watcher did not report watching within %g s; edits made "
                        "now may be missed until it does (watching %s).", timeout,
                        ", ".join(str(d) for d in reloader.dirs))
        return reloader

    waited = deferToThread(reloader.watcher.watching.wait, timeout)
    return waited.addCallback(watching)
