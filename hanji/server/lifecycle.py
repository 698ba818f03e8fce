"""The life of applets: activation, hot swap and deactivation; reactor thread.

:class:`AppletLifecycle` runs each applet's hooks (``on_activate``,
``on_deactivate``) in the Django pool, builds its routes there
(:mod:`hanji.server.mounting`), and mounts them in the registry on the reactor
thread. One lock orders activations, swaps and deactivations, so an applet is never
swapped twice at once. A hung ``on_activate`` is abandoned after the activation
timeout and does not hold the lock. What an applet opened is closed when it stops.

State changes go through :meth:`AppletRecord.move_to`
(:class:`~hanji.server.registry.AppletState`).

An applet placed in exactly one process (``placement = "one"``) is mounted in every
process, but its ``on_activate`` and ``on_deactivate`` run only where its lease is
held (:mod:`hanji.server.placement`); a standby process runs them when it takes
the lease over.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hanji import _errorlog as _errors
from hanji._exceptions import ActivationTimeout
from hanji._threads import assert_reactor_thread
from hanji.core._context import run_as
from hanji.server import mounting
from hanji.server.placement import Placements
from hanji.server.registry import AppletRecord, AppletState, Registry, load_package, prepare

if TYPE_CHECKING:
    from hanji.django.pool import DjangoPool
    from hanji.django.setup import SetupResult

log = logging.getLogger("hanji.server")


class AppletLifecycle:
    """Activate, swap and deactivate the applets of one registry; reactor thread.

    ``pool`` returns the Django pool to run hooks on (the server replaces its pool
    when it stops); ``routes_changed`` is called after every change of the mounted
    applets (it rebuilds Django's URLconf).
    """

    def __init__(self, reactor: Any, registry: Registry, pool: Callable[[], DjangoPool], *,
                 activate_timeout: float | None, routes_changed: Callable[[], None],
                 placements: Placements | None = None) -> None:
        self.reactor = reactor
        # Where each applet's on_activate runs (no lease backend: all here).
        self.placements = placements if placements is not None else Placements(reactor)
        self.placements.on_acquired = self._take_over
        self.placements.on_lost = self._lose
        self.registry = registry
        self._pool = pool
        self.activate_timeout = activate_timeout
        self._routes_changed = routes_changed
        self._lock = defer.DeferredLock()
        # Workers still running an on_activate that timed out: the drain does not
        # wait for them. Reactor thread.
        self.abandoned = 0

    # -- activation ----------------------------------------------------------------

    @defer.inlineCallbacks
    def activate_packages(self, setup: SetupResult) -> Any:
        """Load and activate every applet package found at setup; reactor thread.

        An applet that fails is reported by name with its traceback; the others go on.
        """
        assert_reactor_thread("AppletLifecycle.activate_packages()")
        for name, tb in setup.failures.items():
            self.registry.put(_failed_record(name, tb))
        for name, path in setup.packages.items():
            try:
                record = yield deferToThreadPool(self.reactor, self._pool(), load_package, name, path)
            except Exception:
                text = traceback.format_exc()
                _errors.report_failure(name, f"loading applet package '{name}'", text,
                                       f"Applet '{name}' failed to load; the others go on")
                self.registry.put(_failed_record(name, text))
                continue
            try:
                yield self.activate_record(record)
            except Exception:
                pass  # already logged and recorded by activate_record
        log.info("Applet activation finished: %d active, %d failed.",
                 len(self.registry.active()), len(self.registry.failed()))

    def activate(self, applet: Any, web: Any = None) -> defer.Deferred[AppletRecord]:
        """Activate (or hot-swap) an applet given as class or instance; reactor thread."""
        assert_reactor_thread("AppletLifecycle.activate()")
        try:
            record = prepare(applet, web)
        except Exception:
            return defer.fail()
        return self.activate_record(record)

    def activate_record(self, record: AppletRecord) -> defer.Deferred[AppletRecord]:
        """Run ``on_activate`` in the Django pool, then mount the routes atomically,
        replacing an applet of the same id; reactor thread.

        The old instance keeps serving until the new one is mounted, so requests
        during a swap get the old or the new answer. Its ``on_deactivate`` runs and
        what it opened is closed before the new ``on_activate`` (same ports).
        """
        assert_reactor_thread("AppletLifecycle.activate_record()")
        return self._lock.run(self._activate_locked, record)

    @defer.inlineCallbacks
    def _activate_locked(self, record: AppletRecord) -> Any:
        old = self.registry.snapshot().get(record.id)
        if old is not None:
            record.version = old.version + 1
            if old.is_active:
                # Its routes stay mounted (state kept) until the new record replaces it.
                yield self._stop(old, keep_serving=True)
        record.move_to(AppletState.ACTIVATING)
        record.activated_seq = _errors.last_seq()
        # An "exactly one" applet runs on_activate only where its lease is held.
        runs_here: list[bool] = []
        work: defer.Deferred[Any] = defer.Deferred()  # fires when the worker returns

        def claimed(here: bool) -> None:
            runs_here.append(here)
            self._hook(record, self._activate_in_worker, record, here).chainDeferred(work)

        self.placements.claim(record).addCallbacks(claimed, work.errback)
        waited = _shielded(work)
        if self.activate_timeout is not None:
            waited.addTimeout(self.activate_timeout, self.reactor)
        try:
            yield waited
        except Exception:
            failure = Failure()
            if not work.called:
                # on_activate still runs in its worker (a thread cannot be stopped):
                # the caller stopped waiting, or it overran activate_timeout.
                # Don't hold the lock for it, or one hung applet would block every
                # later activation and the shutdown; close what it opened when it
                # returns.
                self._abandon(record, work)
                if failure.check(defer.TimeoutError):
                    failure = Failure(ActivationTimeout(record.id, (
                        f"{type(record.applet).__name__}.on_activate() of applet '{record.id}' did not "
                        f"return within {self.activate_timeout:g} s (--activate-timeout); the applet is "
                        "marked failed and its Django worker is left to finish. Keep on_activate short: "
                        "start long or blocking work with deferToThread, or on the reactor.")))
            text = failure.getTraceback()
            record.move_to(AppletState.FAILED, error=text)
            record.resources, record.websockets = {}, {}
            _errors.report_failure(record.id, f"{type(record.applet).__name__}.on_activate()", text,
                                   f"Applet '{record.id}' failed to activate; the others go on")
            yield record.applet._hanji_opened.close_all()
            yield self.placements.forget(record)
            self._mount(record, old)
            failure.raiseException()
        if runs_here and runs_here[0]:
            self.placements.ran(record)
        record.move_to(AppletState.ACTIVE)
        self._mount(record, old)
        log.info("Applet '%s' active (version %d).", record.id, record.version)
        return record

    def _abandon(self, record: AppletRecord, work: defer.Deferred[Any]) -> None:
        """Stop waiting for a running ``on_activate``; when it returns, close what
        it opened. Reactor thread."""
        self.abandoned += 1

        def returned(_: Any) -> Any:
            self.abandoned -= 1
            log.warning("Applet '%s': the abandoned on_activate() returned; closing what it opened.", record.id)
            return record.applet._hanji_opened.close_all()

        work.addBoth(returned)

    def _mount(self, record: AppletRecord, old: AppletRecord | None) -> None:
        """Put ``record`` in place of ``old`` atomically, then retire ``old``; reactor thread."""
        self.registry.put(record)
        self._routes_changed()
        if old is not None and old.is_active:
            old.move_to(AppletState.DEACTIVATED)
            old.applet._hanji_opened.close_closables()

    def _hook(self, record: AppletRecord, hook: Callable[..., Any], *args: Any,
              pool: DjangoPool | None = None) -> defer.Deferred[Any]:
        """Run an applet hook as the applet in a Django worker; reactor thread."""
        return deferToThreadPool(self.reactor, pool or self._pool(), run_as, record.applet, hook, *args)

    def _activate_in_worker(self, record: AppletRecord, run_hook: bool = True) -> None:
        """Run ``on_activate`` (unless another process holds the applet's lease)
        and build the routes; Django worker thread."""
        if run_hook:
            record.applet.on_activate()
        mounting.build_routes(record, self.reactor)

    # -- "exactly one" applets: taking over and losing the lease --------------------------

    def _take_over(self, applet_id: str) -> defer.Deferred[None]:
        """Run the ``on_activate`` of a mounted standby applet whose lease this
        process just took; reactor thread."""
        return self._lock.run(self._take_over_locked, applet_id)

    @defer.inlineCallbacks
    def _take_over_locked(self, applet_id: str) -> Any:
        record = self.registry.snapshot().get(applet_id)
        if (record is None or not record.is_active or not self.placements.is_current(record)
                or self.placements.hook_ran(record) or not self.placements.holds(applet_id)):
            return
        where = f"{type(record.applet).__name__}.on_activate()"
        record.activated_seq = _errors.last_seq()
        hook = self._hook(record, record.applet.on_activate)
        if self.activate_timeout is not None:
            hook.addTimeout(self.activate_timeout, self.reactor)
        try:
            yield hook
        except Exception:
            # The applet stays mounted and keeps its lease, so no other process
            # retries a failing on_activate in a loop; the error shows it degraded.
            _errors.report_failure(record.id, where, Failure().getTraceback(),
                                   f"Applet '{record.id}' failed to take over in this process")
            yield record.applet._hanji_opened.close_all(closables=False)
            return
        self.placements.ran(record)
        log.info("Applet '%s' took over: its on_activate ran in this process (lease held).", applet_id)

    def _lose(self, applet_id: str) -> defer.Deferred[None]:
        """Stop the work of an applet whose lease this process lost (its
        ``on_deactivate``, then what it opened but its web endpoints); reactor thread."""
        return self._lock.run(self._lose_locked, applet_id)

    @defer.inlineCallbacks
    def _lose_locked(self, applet_id: str) -> Any:
        record = self.registry.snapshot().get(applet_id)
        if record is None or not record.is_active or not self.placements.hook_ran(record):
            return
        self.placements.stopped(record)
        hook = self._hook(record, record.applet.on_deactivate)
        hook.addTimeout(self.activate_timeout or 30.0, self.reactor)
        try:
            yield hook
        except Exception:
            _errors.report_failure(record.id, f"{type(record.applet).__name__}.on_deactivate()",
                                   Failure().getTraceback())
        yield record.applet._hanji_opened.close_all(closables=False)

    # -- deactivation ------------------------------------------------------------------

    @defer.inlineCallbacks
    def _stop(self, record: AppletRecord, keep_serving: bool = False,
              pool: DjangoPool | None = None, timeout: float | None = None) -> Any:
        """Call ``on_deactivate`` (Django pool, at most ``timeout`` s) and close what
        the applet opened; with ``keep_serving`` its routes and websocket endpoints
        stay up (the caller swaps them, then closes the rest). Reactor thread."""
        where = f"{type(record.applet).__name__}.on_deactivate()"
        # A standby "exactly one" applet never ran on_activate here: no on_deactivate.
        hook = (self._hook(record, record.applet.on_deactivate, pool=pool)
                if self.placements.hook_ran(record) else defer.succeed(None))
        if timeout is not None:
            hook.addTimeout(timeout, self.reactor)
        try:
            yield hook
        except defer.TimeoutError:
            _errors.report_failure(record.id, where, f"{where} did not return within {timeout:g} s; "
                                   "Hanji closes what the applet opened without waiting more.")
        except Exception:
            _errors.report_failure(record.id, where, Failure().getTraceback())
        yield record.applet._hanji_opened.close_all(closables=not keep_serving)
        if not keep_serving:
            # Released once what it opened is closed, so the next holder finds its
            # ports free; a hot swap keeps the lease for the new instance.
            yield self.placements.forget(record)
            record.move_to(AppletState.DEACTIVATED)

    def deactivate(self, applet_id: str) -> defer.Deferred[None]:
        """Unmount an applet, run its ``on_deactivate`` and close what it opened;
        reactor thread. Raise AppletNotFound for an unknown id."""
        assert_reactor_thread("AppletLifecycle.deactivate()")
        return self._lock.run(self._deactivate_locked, applet_id)

    @defer.inlineCallbacks
    def deactivate_all(self, pool: DjangoPool, timeout: float) -> Any:
        """Deactivate every active applet, running the hooks on ``pool`` for at most
        ``timeout`` s each (the server's shutdown); reactor thread."""
        assert_reactor_thread("AppletLifecycle.deactivate_all()")
        for record in list(self.registry.snapshot().values()):
            if record.is_active:
                yield self._lock.run(self._deactivate_locked, record.id, pool, timeout)

    @defer.inlineCallbacks
    def _deactivate_locked(self, applet_id: str, pool: DjangoPool | None = None,
                           timeout: float | None = None) -> Any:
        record = self.registry.get(applet_id)
        self.registry.remove(applet_id)
        self._routes_changed()
        if record.is_active:
            yield self._stop(record, pool=pool, timeout=timeout)
        log.info("Applet '%s' deactivated.", applet_id)


def _failed_record(name: str, tb: str) -> AppletRecord:
    """Return the record of an applet package that failed to import or load."""
    from hanji.core.applet import Applet

    record = prepare(Applet(id=name), None, package=name)
    record.move_to(AppletState.FAILED, error=tb)
    return record


def _shielded(work: defer.Deferred[Any]) -> defer.Deferred[Any]:
    """Return a Deferred with ``work``'s result whose cancellation leaves ``work``
    running (a thread cannot be cancelled); ``work`` then fires with None on error."""
    shield: defer.Deferred[Any] = defer.Deferred()

    def relay(result: Any) -> Any:
        if not shield.called:
            shield.callback(result)
        return result

    work.addBoth(relay)
    work.addErrback(lambda _: None)
    return shield
