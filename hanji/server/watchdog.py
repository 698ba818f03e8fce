"""The reactor stall watchdog: report any reactor callback that blocks too long.

A daemon thread, ``HanjiWatchdog``, watches the reactor thread. When the reactor has
been busy in one loop iteration (running callbacks, not waiting for I/O) for longer
than the threshold (50 ms by default: ``hanji serve --stall-threshold MS``,
``HANJI_STALL_MS`` in a notebook), it samples the reactor thread's stack
(``sys._current_frames``) and reports the stall once, with the applet or resource it
blames and the blocking stack:

- a WARNING on the ``hanji.watchdog`` logger (so in ``hanji.log`` and stderr);
- a record in ``hanji.errors()`` when applet code is to blame (shown under the
  next notebook cell); stalls with no applet on the stack (the reactor waiting for
  the GIL, Hanji's own work) are only logged;
- a count in ``%hanji status`` / ``hanji.status()``.

A stall is reported once however long it lasts. A stall at the same place as an
earlier one (a hot loop) is counted, and logged again in one line at the 2nd, 4th,
8th... time only.

How it knows: on the epoll and poll reactors (Linux's default) the reactor's poller
is wrapped so that each return from the I/O wait stamps the start of a loop
iteration (a clock read and two stores, on the reactor thread). The watchdog sleeps
while the reactor waits for I/O and is woken at the next iteration, so an idle
server costs nothing. On other reactors it posts a heartbeat with
``reactor.callFromThread`` every threshold instead (about 20 wake-ups a second at
50 ms) and reports when one is late by the threshold.

The watchdog thread only reads the reactor's frames and stamps; its state is its own.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
import sysconfig
import threading
import time
import traceback
from types import FrameType
from typing import Any, Callable, Sequence

from twisted.python import threadable

from hanji import _compat, _config
from hanji import _errorlog as _errors

log = logging.getLogger("hanji.watchdog")

THREAD_NAME = "HanjiWatchdog"
DEFAULT_THRESHOLD_MS = _config.DEFAULT_STALL_MS

# The reactor waiting for I/O: its innermost frame is one of these (in twisted).
_WAITING = frozenset({"doPoll", "doSelect", "doKEvent", "doIteration", "_doIteration", "doWaitForMultipleEvents"})


@dataclasses.dataclass
class Stall:
    """Stalls at one place: who is blamed, where, how often and how long."""

    applet_id: str | None
    what: str  # the resource or request being served, or the innermost applet frame
    place: str  # "file:line in function" of the blamed frame
    stack: str
    count: int = 0
    longest_ms: float = 0.0
    when: float = 0.0

    def summary(self) -> str:
        """Return one line: who, where, how many times, how long."""
        who = f"applet '{self.applet_id}'" if self.applet_id else "no applet"
        times = f"{self.count} time{'s' if self.count != 1 else ''}"
        return f"{who}, {self.what} at {self.place}: {times}, longest {self.longest_ms:.0f} ms"


class StallWatchdog:
    """Watch one reactor for callbacks that block it longer than ``threshold_ms``.

    ``blame`` returns what the reactor is serving (e.g. ``("hello", "GET /res/hello/x")``)
    or None; it is called on the watchdog thread and must only read. ``packages``
    returns the applet packages by applet id, to recognise applet frames.
    """

    def __init__(
        self,
        reactor: Any,
        threshold_ms: float = DEFAULT_THRESHOLD_MS,
        blame: Callable[[], tuple[str | None, str] | None] | None = None,
        packages: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.reactor = reactor
        self.threshold = max(float(threshold_ms), 1.0) / 1000.0
        self.enabled = float(threshold_ms) > 0
        self._blame = blame or (lambda: None)
        self._packages = packages or (lambda: {})
        self._beat = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Stamped by the reactor thread (watched poller): when the current loop
        # iteration began (0.0: waiting for I/O) and how many began so far.
        self._since = 0.0
        self._gen = 0
        self._parked = False  # the watchdog sleeps until the next iteration
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stalls: dict[tuple[str | None, str], Stall] = {}
        self.total = 0

    # -- life cycle (any thread) ----------------------------------------------------------

    def start(self) -> None:
        """Start the watchdog thread unless disabled or running; any thread."""
        if not self.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop = threading.Event()
        target: Callable[[threading.Event], None] = self._run_heartbeat
        poller = _compat.reactor_poller(self.reactor)
        if isinstance(poller, _WatchedPoller):
            poller = poller.poller
        if poller is not None and callable(getattr(poller, "poll", None)):
            self._since, self._parked = 0.0, False
            _compat.set_reactor_poller(self.reactor, _WatchedPoller(poller, self))
            target = self._run_watched
        self._thread = threading.Thread(target=self._run, args=(target, self._stop), name=THREAD_NAME,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watchdog thread (it exits at its next wake-up) and unwrap the
        reactor's poller; any thread, never waits for the reactor."""
        self._stop.set()
        self._beat.set()
        self._wake.set()
        poller = _compat.reactor_poller(self.reactor)
        if isinstance(poller, _WatchedPoller) and poller.watchdog is self:
            _compat.set_reactor_poller(self.reactor, poller.poller)
        self._thread = None

    # -- the watchdog thread -----------------------------------------------------------------

    def _run(self, loop: Callable[[threading.Event], None], stop: threading.Event) -> None:
        """Run ``loop`` until stopped; an error in it is logged and the watchdog goes
        on (a dead watchdog would report nothing again). Watchdog thread."""
        while not stop.is_set():
            try:
                loop(stop)
                return
            except Exception:
                log.exception("The stall watchdog failed; it goes on watching.")
                stop.wait(max(self.threshold, 0.05))

    def _heartbeat(self) -> None:
        """Mark the reactor responsive; reactor thread."""
        self._beat.set()

    def _run_watched(self, stop: threading.Event) -> None:
        """Follow the iterations the watched poller stamps and report the stalls;
        watchdog thread."""
        while not stop.is_set():
            gen, since = self._gen, self._since
            if not since:
                # The reactor waits for I/O: sleep until the poller returns.
                self._wake.clear()
                self._parked = True
                if self._gen == gen and not self._since and not stop.is_set():
                    self._wake.wait(10.0)
                self._parked = False
                continue
            elapsed = time.monotonic() - since
            if elapsed < self.threshold:
                stop.wait(self.threshold - elapsed)
                continue
            if self._gen != gen:
                continue  # that iteration ended meanwhile
            stall = self._sample(since)
            while self._gen == gen and not stop.is_set():
                stop.wait(self.threshold)
            if stall is not None:
                self._ended(stall, time.monotonic() - since)

    def _run_heartbeat(self, stop: threading.Event) -> None:
        """Post heartbeats and report the stalls (reactors without a poller to
        watch); watchdog thread."""
        while not stop.is_set():
            self._beat.clear()
            posted = time.monotonic()
            try:
                self.reactor.callFromThread(self._heartbeat)
            except Exception:
                return  # the reactor is gone
            if not self._beat.wait(self.threshold) and not stop.is_set():
                stall = self._sample(posted)
                while not self._beat.wait(1.0):
                    if stop.is_set() or not getattr(self.reactor, "running", True):
                        return
                if stall is not None:
                    self._ended(stall, time.monotonic() - posted)
            stop.wait(self.threshold)

    def _sample(self, began: float) -> Stall | None:
        """Sample the reactor thread's stack and report the stall once; return its
        record (None if the reactor was only waiting for I/O). Watchdog thread."""
        frame = sys._current_frames().get(threadable.ioThread) if threadable.ioThread is not None else None
        if frame is None or self._waiting(frame):
            return None
        try:
            served = self._blame()
        except Exception:
            served = None
        applet_id, what, place, stack = self._describe(frame, served)
        if applet_id is None and _housekeeping(frame):
            # The interpreter's own work (a garbage collection's weakref callbacks):
            # nobody's code to fix.
            log.debug("Reactor paused by the interpreter's housekeeping at %s.", place)
            return None
        elapsed_ms = (time.monotonic() - began) * 1000.0
        key = (applet_id, place)
        with self._lock:
            self.total += 1
            stall = self._stalls.get(key)
            first = stall is None
            if stall is None:
                stall = self._stalls[key] = Stall(applet_id, what, place, stack)
            stall.count += 1
            stall.when = time.time()
            count = stall.count
        threshold_ms = self.threshold * 1000.0
        who = f"applet '{applet_id}'" if applet_id else "no applet code on the stack"
        if first:
            message = (
                f"Reactor stall: a callback has blocked the reactor thread for over {threshold_ms:.0f} ms "
                f"({who}; {what}). Code on the reactor must not block: return a Deferred, or move the "
                "work to a thread with hanji.core.utils.defer_to_django(f) or "
                "twisted.internet.threads.deferToThread(f)."
            )
            if not applet_id:
                message += (" With no applet on the stack, the reactor may also be waiting for the GIL "
                            "held by CPU-bound threads (Django views).")
            message += f" Blocking stack of the reactor thread:\n{stack.rstrip()}"
            log.warning("%s", message)
            if applet_id:
                _errors.report(applet_id, f"reactor stall over {threshold_ms:.0f} ms ({what})", message)
        elif count & (count - 1) == 0:
            log.warning("Reactor stall #%d at the same place: %s, %s at %s (stack logged at the first; "
                        "%.0f ms so far).", count, who, what, place, elapsed_ms)
        return stall

    def _ended(self, stall: Stall, seconds: float) -> None:
        """Record how long the stall lasted; watchdog thread."""
        ms = seconds * 1000.0
        with self._lock:
            stall.longest_ms = max(stall.longest_ms, ms)
            count = stall.count
        if count & (count - 1) == 0:  # the 1st, 2nd, 4th... at this place, as at its start
            who = f"applet '{stall.applet_id}'" if stall.applet_id else "no applet code on the stack"
            log.warning("Reactor stall ended: the reactor thread was blocked for %.0f ms (%s; %s at %s).",
                        ms, who, stall.what, stall.place)

    @staticmethod
    def _waiting(frame: FrameType) -> bool:
        """Return True if the reactor thread is waiting for I/O (not stalled: our
        heartbeat is only late, the process starved of CPU)."""
        code = frame.f_code
        return code is _WatchedPoller.poll.__code__ or (code.co_name in _WAITING and "twisted" in code.co_filename)

    def _describe(self, frame: FrameType, served: tuple[str | None, str] | None) -> tuple[str | None, str, str, str]:
        """Return ``(applet_id, what, place, stack)`` for a stalled reactor frame."""
        stack = "".join(traceback.format_stack(frame))
        packages = {pkg: applet_id for applet_id, pkg in self._packages().items() if pkg}
        applet_id, blamed = None, None
        f: FrameType | None = frame
        while f is not None:  # innermost first
            found = _applet_of_frame(f, packages)
            if found is not None:
                applet_id, blamed = found, f
                break
            f = f.f_back
        what = ""
        if served is not None:
            # The request being served names the URL, but its applet is charged
            # only when its own code is on the stack (the stall may be Hanji's,
            # Django's or the GIL's).
            _, what = served
        where = blamed or frame
        name = getattr(where.f_code, "co_qualname", where.f_code.co_name)
        place = f"{where.f_code.co_filename}:{where.f_lineno} in {name}"
        what = f"{what} in {name}()" if what else f"in {name}()"
        return applet_id, what, place, stack

    # -- reports (any thread) -------------------------------------------------------------

    def stalls(self) -> list[Stall]:
        """Return the stalls seen, by place, most recent first; any thread."""
        with self._lock:
            return sorted((dataclasses.replace(s) for s in self._stalls.values()), key=lambda s: -s.when)

    def summary(self) -> str:
        """Return one line for ``%hanji status``; any thread."""
        threshold_ms = self.threshold * 1000.0
        if not self.enabled:
            return "reactor stall watchdog: off (HANJI_STALL_MS=0)"
        stalls = self.stalls()
        if not stalls:
            return f"reactor stalls over {threshold_ms:.0f} ms: none"
        return (f"reactor stalls over {threshold_ms:.0f} ms: {self.total} "
                f"(last: {stalls[0].summary()})")


class _WatchedPoller:
    """The reactor's epoll (or poll) object, stamping each loop iteration for the
    watchdog: ``poll`` runs on the reactor thread; the rest is delegated."""

    def __init__(self, poller: Any, watchdog: StallWatchdog) -> None:
        self.poller = poller
        self.watchdog = watchdog

    def poll(self, *args: Any) -> Sequence[Any]:
        """Wait for I/O as the wrapped poller does; the iteration begins on return."""
        watchdog = self.watchdog
        watchdog._since = 0.0
        try:
            return self.poller.poll(*args)  # type: ignore[no-any-return]
        finally:
            watchdog._since = time.monotonic()
            watchdog._gen += 1
            if watchdog._parked:
                watchdog._parked = False
                watchdog._wake.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


_STDLIB = sysconfig.get_paths()["stdlib"]


def _housekeeping(frame: FrameType) -> bool:
    """Return True if the stalled frame is the interpreter's housekeeping: a weakref
    or garbage-collection callback in the standard library (``weakref.py``'s
    ``remove``, say), which runs wherever the collector happened to start."""
    code = frame.f_code
    return code.co_filename.startswith(_STDLIB) and code.co_name in ("remove", "_remove_dead_weakref", "__del__")


def _applet_of_frame(frame: FrameType, packages: dict[str, str]) -> str | None:
    """Return the id of the applet whose code ``frame`` runs, if any: by module
    (a packaged applet) or by ``self`` (a resource, websocket or applet of a cell)."""
    module = frame.f_globals.get("__name__", "") or ""
    top = module.split(".", 1)[0]
    if top in packages:
        return packages[top]
    if module.startswith(("hanji.", "twisted.")) or module == "hanji":
        return None
    if "self" not in frame.f_code.co_varnames[:1]:
        return None
    try:
        me = frame.f_locals.get("self")
    except Exception:
        return None
    applet = _plain_attr(me, "applet")
    if applet is None and _plain_attr(me, "_hanji_opened") is not None:
        applet = me
    applet_id = _plain_attr(applet, "id")
    return str(applet_id) if isinstance(applet_id, str) and applet_id else None


def _plain_attr(obj: Any, name: str) -> Any:
    """Return ``obj.name`` if it is a plain instance or class value, else None.

    Called on the watchdog thread about objects the stalled reactor is using: no
    property, ``__getattr__`` or other applet code may run here (it could fail, or
    act on another thread's behalf).
    """
    try:
        value = inspect.getattr_static(obj, name, None)
    except Exception:
        return None
    return None if hasattr(type(value), "__get__") else value
