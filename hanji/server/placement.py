"""Where applets run across processes and hosts: placement and leases; reactor thread.

An applet's ``placement`` (:class:`hanji.core.applet.Placement`) says where its
``on_activate`` runs: in every process (``every``, the default: web code, which
every process serves anyway) or in exactly one process of the whole set (``one``:
protocols on fixed ports, timers, background jobs). "Exactly one" holds through a
lease per applet, in a trusted primitive chosen by :func:`lease_backend`:

- Redis locks (:mod:`hanji.server._lease_redis`) when ``HANJI_BUS`` is a Redis URL,
  for any number of hosts; a dead holder's lease expires after ``HANJI_LEASE_TTL``;
- PostgreSQL advisory locks (:mod:`hanji.server._lease_postgres`) when
  ``DATABASE_URL`` is PostgreSQL, for any number of hosts; released when a dead
  holder's connection drops;
- file locks in the data dir (:mod:`hanji.server._lease_file`) otherwise, for the
  processes of one host; released by the OS when the holder dies.

Every process mounts an "exactly one" applet's web UI; only the lease holder runs
its ``on_activate`` (and ``on_deactivate``). The others stand by and retry every
third of the lease's lifetime: when the holder dies or stops, one of them takes the
lease and runs ``on_activate`` (:class:`~hanji.server.lifecycle.AppletLifecycle`
does, told through :attr:`Placements.on_acquired`). A holder that fails to renew its
lease stops the applet's work (:attr:`Placements.on_lost`).

A notebook kernel is one process: its server has no lease backend, and every applet
runs there, with hot swaps as live as ever.

:class:`Placements` lives on the reactor thread; the backends block (network, file
locks) and run on one dedicated thread, ``HanjiLease``, never on the reactor nor in
the Django pool.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Protocol

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from hanji._threads import assert_reactor_thread
from hanji.core.applet import Placement

if TYPE_CHECKING:
    from hanji.server.registry import AppletRecord

log = logging.getLogger("hanji.server")


class Where(enum.StrEnum):
    """Where an applet's ``on_activate`` runs, as ``%hanji status`` and the home page say."""

    EVERY = "every worker"
    HERE = "this process (lease held)"
    STANDBY = "another process (standby)"
    ALONE = "this process (single process)"


class LeaseBackend(Protocol):
    """A lease store; every method blocks and runs on the lease thread only."""

    description: str

    def acquire(self, key: str) -> bool:
        """Take the lease ``key`` if free (never waiting); return whether it is held."""

    def renew(self, key: str) -> bool:
        """Keep the lease ``key``; return whether it is still held."""

    def release(self, key: str) -> None:
        """Give the lease ``key`` up."""

    def close(self) -> None:
        """Release every lease and close connections."""


def lease_backend(data_dir: Path, ttl: float | None = None,
                  environ: Mapping[str, str] | None = None) -> LeaseBackend:
    """Return the lease backend for ``hanji serve``: Redis if ``HANJI_BUS`` is a
    Redis URL, PostgreSQL advisory locks if ``DATABASE_URL`` is PostgreSQL, else file
    locks in ``data_dir/leases``. Connects to nothing yet; any thread."""
    import os

    from hanji import _config

    env = os.environ if environ is None else environ
    bus = _config.redis_bus_url(env)
    if bus:
        from hanji.server._lease_redis import RedisLeases

        return RedisLeases(bus, _config.lease_ttl() if ttl is None else ttl)
    database = env.get("DATABASE_URL", "").strip()
    if database.startswith(("postgres://", "postgresql://")):
        from hanji.server._lease_postgres import PostgresLeases

        return PostgresLeases(database)
    from hanji.server._lease_file import FileLeases

    return FileLeases(data_dir / "leases")


def placement_of(record: AppletRecord) -> Placement:
    """Return the applet's placement; raise ValueError naming the applet and the
    values allowed for anything else. Any thread."""
    value = getattr(record.applet, "placement", Placement.EVERY)
    try:
        return Placement(value)
    except ValueError:
        allowed = ", ".join(repr(p.value) for p in Placement)
        raise ValueError(f"Applet '{record.id}': placement = {value!r} is not a placement; use one of "
                         f"{allowed} (hanji.core.applet.Placement).") from None


_thread_numbers = itertools.count(1)


def _lease_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    """Return the daemon thread ``HanjiLease-N`` that runs the lease backend."""
    kwargs["name"] = f"HanjiLease-{next(_thread_numbers)}"
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


class _LeaseThread(ThreadPool):
    """One daemon thread for the blocking lease calls, so they never wait behind
    Django jobs nor hold up the reactor; its calls run one at a time."""

    threadFactory = staticmethod(_lease_thread)  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(minthreads=0, maxthreads=1, name="HanjiLease")


class Placements:
    """The leases of this process's "exactly one" applets; reactor thread.

    ``backend`` None means one process (a notebook kernel): every applet runs here
    and no lease is taken. ``interval`` is how often held leases are renewed and
    standby applets try again, in seconds (a third of the lease's lifetime).

    The lifecycle sets :attr:`on_acquired` (a standby applet's lease was taken: run
    its ``on_activate``) and :attr:`on_lost` (a held lease could not be renewed:
    stop its work). Attributes are owned by the reactor thread.

    ``in_thread(f, *args)`` runs a backend call and returns a Deferred of its result;
    by default on the lease thread (tests pass a synchronous one).
    """

    def __init__(self, reactor: Any, backend: LeaseBackend | None = None, interval: float = 5.0,
                 in_thread: Callable[..., defer.Deferred[Any]] | None = None) -> None:
        self.reactor = reactor
        self.backend = backend
        self.interval = interval
        self._in_thread = in_thread or self._on_lease_thread
        self.on_acquired: Callable[[str], Any] = lambda applet_id: None
        self.on_lost: Callable[[str], Any] = lambda applet_id: None
        # The current record of each "exactly one" applet, by id.
        self._records: dict[str, AppletRecord] = {}
        self._held: set[str] = set()
        # The record whose on_activate ran here, by applet id.
        self._ran: dict[str, AppletRecord] = {}
        self._thread: _LeaseThread | None = None
        self._loop: LoopingCall | None = None
        self._ticking = False
        self._failing = False  # the backend failed at the last call (logged once)

    # -- what the lifecycle asks ------------------------------------------------------

    def claim(self, record: AppletRecord) -> defer.Deferred[bool]:
        """Decide whether ``record``'s ``on_activate`` runs in this process: True
        for an ``every`` applet or without backend; for a ``one`` applet, try to
        take (or keep, on a hot swap) its lease. Fail with ValueError for a bad
        placement. Reactor thread."""
        assert_reactor_thread("Placements.claim()")
        try:
            placement = placement_of(record)
        except ValueError:
            return defer.fail()
        if placement is Placement.EVERY or self.backend is None:
            return defer.succeed(True)
        self._records[record.id] = record
        if record.id in self._held:
            return defer.succeed(True)

        def taken(held: bool) -> bool:
            if held and self._records.get(record.id) is record:
                self._held.add(record.id)
                return True
            if held:  # replaced or forgotten meanwhile
                self._release_later(record.id)
            return False

        # A lease store that cannot be reached leaves the applet standing by
        # (logged once by _call); the retry loop tries again.
        return self._call("acquire", record.id).addCallbacks(taken, lambda _: False)

    def ran(self, record: AppletRecord) -> None:
        """Note that ``record``'s ``on_activate`` ran in this process; reactor thread."""
        self._ran[record.id] = record

    def stopped(self, record: AppletRecord) -> None:
        """Note that ``record``'s work stopped here (lease lost); reactor thread."""
        if self._ran.get(record.id) is record:
            del self._ran[record.id]

    def hook_ran(self, record: AppletRecord) -> bool:
        """Return whether ``record``'s ``on_activate`` ran in this process (so its
        ``on_deactivate`` must run); reactor thread."""
        if placement_of_or_every(record) is Placement.EVERY or self.backend is None:
            return True
        return self._ran.get(record.id) is record

    def is_current(self, record: AppletRecord) -> bool:
        """Return whether ``record`` is the applet's record that leases are kept for;
        reactor thread."""
        return self._records.get(record.id) is record

    def holds(self, applet_id: str) -> bool:
        """Return whether this process holds the lease of ``applet_id``; reactor thread."""
        return applet_id in self._held

    def forget(self, record: AppletRecord) -> defer.Deferred[None]:
        """Stop keeping a lease for ``record`` (deactivated or failed), releasing it
        if held; fires once released. Reactor thread."""
        if self._records.get(record.id) is not record:
            return defer.succeed(None)
        del self._records[record.id]
        self._ran.pop(record.id, None)
        if record.id not in self._held:
            return defer.succeed(None)
        self._held.discard(record.id)
        return self._call("release", record.id).addErrback(lambda _: None)

    def where(self, record: AppletRecord) -> Where:
        """Return where ``record``'s ``on_activate`` runs; any thread (reads only)."""
        if placement_of_or_every(record) is Placement.EVERY:
            return Where.EVERY
        if self.backend is None:
            return Where.ALONE
        return Where.HERE if record.id in self._held else Where.STANDBY

    # -- renewing and retrying ---------------------------------------------------------

    def start(self) -> None:
        """Renew held leases and retry standby applets every ``interval`` s; reactor thread."""
        assert_reactor_thread("Placements.start()")
        if self.backend is None or self._loop is not None:
            return
        log.info("Leases of \"exactly one\" applets: %s, renewed or retried every %g s.",
                 self.backend.description, self.interval)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: log.error("The lease loop stopped: %s", f.getTraceback()))

    def stop_retrying(self) -> None:
        """Stop renewing and retrying (the server is stopping); reactor thread."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    @defer.inlineCallbacks
    def close(self) -> Any:
        """Release every lease, close the backend and stop the lease thread; reactor
        thread. Call it after the applets were deactivated."""
        assert_reactor_thread("Placements.close()")
        self.stop_retrying()
        self._held.clear()
        self._records.clear()
        self._ran.clear()
        if self.backend is None:
            return
        try:
            yield self._call("close")
        except Exception:
            pass
        thread, self._thread = self._thread, None
        if thread is not None:
            # Joining the idle thread is quick, but it is a join: off the reactor.
            yield deferToThreadPool(self.reactor, self.reactor.getThreadPool(), thread.stop)

    def tick(self) -> defer.Deferred[None]:
        """Renew every held lease and try every standby applet once; reactor thread."""
        return self._tick()

    @defer.inlineCallbacks
    def _tick(self) -> Any:
        """Renew, then retry, one lease at a time; a tick still running when the
        next is due makes that one a no-op. Reactor thread."""
        if self._ticking or self.backend is None:
            return
        self._ticking = True
        try:
            for applet_id in list(self._records):
                if applet_id not in self._records:
                    continue
                if applet_id in self._held:
                    still = yield self._call("renew", applet_id).addErrback(lambda _: False)
                    if not still and applet_id in self._held:
                        self._held.discard(applet_id)
                        log.warning("Applet '%s' lost its lease (%s); its on_activate work stops in this "
                                    "process and goes on where the lease is held now.",
                                    applet_id, self.backend.description)
                        # Not waited for: renewing the other leases must not wait on hooks.
                        defer.maybeDeferred(self.on_lost, applet_id).addErrback(_log_failure, applet_id)
                else:
                    held = yield self._call("acquire", applet_id).addErrback(lambda _: False)
                    if not held:
                        continue
                    if applet_id not in self._records:  # forgotten meanwhile
                        yield self._call("release", applet_id).addErrback(lambda _: None)
                        continue
                    self._held.add(applet_id)
                    log.info("Applet '%s': this process took its lease (%s) and runs its on_activate.",
                             applet_id, self.backend.description)
                    defer.maybeDeferred(self.on_acquired, applet_id).addErrback(_log_failure, applet_id)
        finally:
            self._ticking = False

    # -- the lease thread --------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> defer.Deferred[Any]:
        """Run ``backend.<method>(*args)`` on the lease thread; log the first failure
        of a run of failures and the recovery. Reactor thread."""
        backend = self.backend
        assert backend is not None
        done = self._in_thread(getattr(backend, method), *args)

        def worked(result: Any) -> Any:
            if self._failing:
                self._failing = False
                log.info("Leases work again (%s).", backend.description)
            return result

        def failed(failure: Any) -> Any:
            if not self._failing:
                self._failing = True
                log.warning("Leases (%s) failed: %s; \"exactly one\" applets stand by until they work "
                            "again (retried every %g s).", backend.description,
                            failure.getErrorMessage() or failure.type.__name__, self.interval)
            return failure

        return done.addCallbacks(worked, failed)

    def _on_lease_thread(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` on the lease thread (started at the first call); reactor thread."""
        if self._thread is None:
            self._thread = _LeaseThread()
            self._thread.start()
        return deferToThreadPool(self.reactor, self._thread, f, *args)

    def _release_later(self, applet_id: str) -> None:
        """Give up a lease taken for a record replaced meanwhile; reactor thread."""
        self._call("release", applet_id).addErrback(lambda _: None)


def placement_of_or_every(record: AppletRecord) -> Placement:
    """Return the applet's placement, ``every`` for an invalid one (its activation
    failed on it); any thread."""
    try:
        return placement_of(record)
    except ValueError:
        return Placement.EVERY


def _log_failure(failure: Any, applet_id: str) -> None:
    """Log, with its traceback, a failure of taking over or stopping ``applet_id``."""
    log.error("Applet '%s': handling its lease failed:\n%s", applet_id, failure.getTraceback())
