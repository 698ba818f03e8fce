"""The Hanji server of this kernel: its reactor thread, start, stop and exit.

One :class:`Session` per kernel. Its public methods run on the cell thread (any
thread but the reactor's) and reach the reactor only through crochet: :meth:`call`
blocks with a deadline, :meth:`acall` is its awaitable twin, and both share
:func:`_with_deadline`, which runs on the reactor thread.

The reactor is started once by crochet and renamed ``HanjiReactor``; it cannot be
restarted, so stopping Hanji (``%unload_ext hanji``, ``%hanji stop``) stops listening
and deactivates the applets but keeps the reactor running for the next start. At
kernel exit crochet stops the reactor; a "before shutdown" trigger first shuts the
server down with a drain deadline, so a Django request in flight cannot hang the exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from hanji import _config, _threads
from hanji._threads import assert_not_reactor_thread, assert_reactor_thread
from hanji.notebook._usage import NotLoaded

log = logging.getLogger("hanji.notebook")

REACTOR_THREAD_NAME = "HanjiReactor"


def _with_deadline(
    reactor: Any, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    timeout: float | None, what: str,
) -> defer.Deferred[Any]:
    """Call ``f`` and fail its Deferred with TimeoutError after ``timeout`` s (the
    work is cancelled); reactor thread."""
    assert_reactor_thread("hanji.notebook.session._with_deadline()")
    d = defer.maybeDeferred(f, *args, **kwargs)
    if timeout is None:
        return d

    def explain(result: Any, timeout: float) -> Any:
        # Whatever the cancelled work failed with (CancelledError, an Agent's
        # ResponseNeverReceived...), the cause is the deadline: say so.
        raise TimeoutError(f"{what} did not finish within {timeout:g} s (timeout={timeout:g}).")

    return d.addTimeout(timeout, reactor, onTimeoutCancel=explain)


def _notebook_applet_dirs(found: list[Path]) -> list[Path]:
    """Return the applet directories of a kernel: those found as for ``hanji serve``
    (``HANJI_APPLETS``, ``./applets``), else ``../applets`` (a notebook in a
    ``notebooks/`` folder beside the project's applets, as the tutorials are)."""
    if found:
        return found
    beside = Path("..", "applets").resolve()
    if beside.is_dir():
        log.info("Applets from %s (beside this notebook's folder; HANJI_APPLETS chooses others).", beside)
        return [beside]
    return []


def _name_reactor_thread() -> str:
    """Rename the current thread ``HanjiReactor``; reactor thread."""
    threading.current_thread().name = REACTOR_THREAD_NAME
    return REACTOR_THREAD_NAME


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    """Resolve ``future`` with a value or a Failure; the future's loop thread."""
    if future.done():
        return
    if isinstance(result, Failure):
        future.set_exception(result.value)
    else:
        future.set_result(result)


@dataclasses.dataclass
class StartInfo:
    """What a start did: the port asked for (the server has the one it got), and
    how long it took."""

    wanted_port: int
    seconds: float


class Session:
    """Hanji in this kernel. Attributes are owned by the cell thread; the server's
    own state is the reactor thread's."""

    def __init__(self) -> None:
        self.reactor: Any = None
        self.server: Any = None
        self.running = False
        self.host = "127.0.0.1"
        # Read again from the environment at each start (hanji._config).
        self.drain_timeout = _config.DEFAULT_NOTEBOOK_DRAIN_TIMEOUT
        # Reactor callbacks blocking longer than this are reported (0: watchdog off).
        self.stall_threshold_ms = _config.DEFAULT_STALL_MS
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.on_stop: list[Callable[[], None]] = []  # cell-thread callbacks after a stop
        self.exiting = False  # the process exits: stop_at_exit runs
        self._lock = threading.Lock()

    # -- calls into the reactor ------------------------------------------------------

    def call(self, f: Callable[..., Any], *args: Any, timeout: float | None = 30.0,
             what: str = "Hanji call", **kwargs: Any) -> Any:
        """Run ``f`` on the reactor, wait for its (Deferred) result and return it.

        Must not run on the reactor thread. Raise TimeoutError after ``timeout`` s
        (the reactor-side work is cancelled), or what ``f`` raised.
        """
        import crochet

        assert_not_reactor_thread(f"{what} (Session.call)")
        eventual = crochet.run_in_reactor(_with_deadline)(self.reactor, f, args, kwargs, timeout, what)
        try:
            # The reactor enforces the deadline; this one only guards a stuck reactor.
            return eventual.wait(timeout + 5.0 if timeout is not None else 24 * 3600.0)
        except crochet.TimeoutError:
            eventual.cancel()
            raise TimeoutError(f"{what}: the reactor thread did not answer in time.") from None

    async def acall(self, f: Callable[..., Any], *args: Any, timeout: float | None = 30.0,
                    what: str = "Hanji call", **kwargs: Any) -> Any:
        """Awaitable twin of :meth:`call`: run ``f`` on the reactor and await its
        result on the running asyncio loop (the cell's, under autoawait)."""
        import crochet

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        pending: list[defer.Deferred[Any]] = []

        def start() -> None:
            # Reactor thread: the result hops back to the loop's thread.
            d = _with_deadline(self.reactor, f, args, kwargs, timeout, what)
            pending.append(d)
            d.addBoth(lambda result: loop.call_soon_threadsafe(_settle, future, result))

        crochet.run_in_reactor(start)()
        try:
            return await future
        except asyncio.CancelledError:

            def cancel() -> None:
                for d in pending:
                    d.cancel()

            crochet.run_in_reactor(cancel)()
            raise

    # -- start and stop ------------------------------------------------------------

    def start(self) -> StartInfo | None:
        """Start Hanji, or start it again after :meth:`stop`; cell thread.

        Thread-safe and idempotent (return None if already running), not reentrant.
        """
        assert_not_reactor_thread("Session.start()")
        with self._lock:
            if self.running:
                return None
            began = time.perf_counter()
            # Debug mode (wrong-thread guard, tracebacks in 500s) is on in a notebook
            # unless HANJI_DEBUG=0 turns it off.
            _threads.set_debug(_config.debug(True))
            self.drain_timeout = _config.notebook_drain_timeout()
            self.stall_threshold_ms = _config.stall_ms()
            # Phase 1: the reactor, in crochet's thread (started once per kernel).
            self._start_reactor()
            # Phase 2: Django configured and migrated, here on the cell thread.
            setup = self._setup_django()
            # Phase 3: the server, built once on the reactor; listen (next free port
            # if taken) and activate the packaged applets there. A restart listens
            # on the port of the previous start.
            if self.server is None:
                wanted = _config.port()
                self.server = self.call(self._build_server, setup, wanted, what="building the Hanji server")
            wanted = self.server.port
            self.call(self.server.start, port_fallback=True, timeout=120.0, what="starting Hanji")
            self.running = True
            return StartInfo(wanted, time.perf_counter() - began)

    def _start_reactor(self) -> None:
        """Phase 1: the reactor in crochet's thread, named HanjiReactor; cell thread."""
        import crochet

        crochet.setup()  # idempotent
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
            self.call(_name_reactor_thread, timeout=10.0, what="naming the reactor thread")

    def _setup_django(self) -> Any:
        """Phase 2: configure Django and apply migrations on this (cell) thread.

        Blocking database work: never on the reactor. The cell thread has a running
        asyncio loop, so Django's async guard is lifted for this synchronous code.
        """
        from hanji.notebook import _logs
        from hanji.notebook.orm import allow_sync_orm
        from hanji.django import setup as django_setup

        data = _config.data_dir()
        self.data_dir = data
        self.log_path = _logs.configure(data)
        with allow_sync_orm():
            setup = django_setup.setup(_notebook_applet_dirs(django_setup.applet_dirs_from_env()), data)
            django_setup.migrate()
        from hanji.notebook.schema import watch_cell_models

        watch_cell_models()
        return setup

    def _build_server(self, setup: Any, port: int) -> Any:
        """Phase 3: build the server once and arm the exit trigger; reactor thread."""
        assert_reactor_thread("Session._build_server()")
        from hanji.server.security.access import new_token
        from hanji.server.runtime import HanjiServer

        # Always a token, even on loopback: another local user or a web page must
        # not drive this kernel's applets. The notebook client sends it as a header.
        token = _config.token() or new_token()
        server = HanjiServer(self.reactor, setup, host=self.host, port=port,
                             drain_timeout=self.drain_timeout, token=token,
                             stall_threshold_ms=self.stall_threshold_ms)
        self.reactor.addSystemEventTrigger("before", "shutdown", self._shutdown_for_exit)
        return server

    def stop(self) -> bool:
        """Stop listening (the port is free on return), drain and deactivate every
        applet, keeping the reactor for a later :meth:`start`; cell thread.

        Return False if Hanji was not running.
        """
        assert_not_reactor_thread("Session.stop()")
        with self._lock:
            if not self.running:
                return False
            try:
                self.call(self.server.shutdown, timeout=self.drain_timeout + 30.0, what="stopping Hanji")
            finally:
                self.running = False
                for callback in list(self.on_stop):
                    callback()
            return True

    def stop_at_exit(self) -> None:
        """Stop Hanji as the process exits, if the reactor's "before shutdown"
        trigger has not (an atexit handler, registered after crochet's so it runs
        while the reactor still does). Main thread.

        In a kernel the trigger is what runs: when the kernel's main thread ends,
        Python waits for the reactor's (non-daemon) thread, and crochet's watchdog,
        seeing the main thread gone, stops the reactor, which runs
        :meth:`_shutdown_for_exit`.
        """
        if self.exiting or not self.running or self.server is None:
            return
        self.exiting = True
        # Not Session.call: crochet's own watchdog stops the reactor (failing its
        # pending calls with ReactorStopped) once the main thread is finishing, while
        # the shutdown still runs; an Event set by the reactor is all we wait for.
        done = threading.Event()
        server = self.server

        def shut_down() -> None:
            server.shutdown(self.drain_timeout).addBoth(lambda _: done.set())

        try:
            self.reactor.callFromThread(shut_down)
            if not done.wait(self.drain_timeout + 10.0):
                log.warning("Hanji shutdown at exit did not finish within %g s.", self.drain_timeout + 10.0)
        finally:
            self.running = False

    def on_sigterm(self, signum: int, frame: Any) -> None:
        """SIGTERM: during the exit's shutdown (jupyter_client sends one 2.5 s after
        its shutdown request), end the drain now; the deactivation still runs.
        Otherwise exit, which stops Hanji. Main thread (a signal handler)."""
        if self.exiting:
            if self.server is not None and self.reactor is not None:
                self.reactor.callFromThread(self.server.hurry)
            return
        raise SystemExit(128 + int(signum))

    def _shutdown_for_exit(self) -> defer.Deferred[Any] | None:
        """Shut the server down with a deadline before the reactor stops, if
        stop_at_exit did not; reactor thread ("before shutdown" trigger)."""
        assert_reactor_thread("Session._shutdown_for_exit()")
        if self.server is None or self.exiting or not self.running:
            return None
        self.exiting = True  # from now on a SIGTERM hurries the drain
        d = self.server.shutdown(timeout=self.drain_timeout)
        d.addTimeout(self.drain_timeout + 2.0, self.reactor)
        d.addErrback(lambda f: log.warning("Hanji shutdown at exit gave up: %s", f.getErrorMessage()))
        return d

    # -- state -------------------------------------------------------------------------

    def reactor_thread(self) -> threading.Thread | None:
        """Return the reactor's thread, if started (any thread)."""
        for thread in threading.enumerate():
            if thread.name in (REACTOR_THREAD_NAME, "CrochetReactor"):
                return thread
        return None

    @property
    def url(self) -> str:
        """The local base URL, e.g. ``http://127.0.0.1:8899`` (any thread)."""
        if self.server is None:
            raise NotLoaded()
        return str(self.server.url)

    @property
    def token(self) -> str | None:
        """The access token of this kernel's server (any thread)."""
        if self.server is None:
            raise NotLoaded()
        return self.server.token  # type: ignore[no-any-return]


_session = Session()


def get_session() -> Session:
    """Return this kernel's session (started or not)."""
    return _session


def running_session() -> Session:
    """Return this kernel's session; raise NotLoaded unless Hanji is running."""
    if not _session.running:
        raise NotLoaded()
    return _session
