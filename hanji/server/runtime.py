"""The Hanji server: one site on one reactor, the Django pool, applet life cycles.

Methods are marked with the thread they must run on. The CLI runs the reactor in the
main thread; the notebook extension runs it in crochet's thread (``HanjiReactor``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any, Callable
from urllib.parse import unquote

from twisted.internet import defer, error as net_error
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hanji._exceptions import ActivationTimeout
from hanji._threads import assert_reactor_thread
from hanji.server import access, tracking
from hanji.server import errors as _errors
from hanji.server.django_bridge import DjangoPool, wsgi_resource
from hanji.server.django_setup import SetupResult, import_optional
from hanji.server.limits import Limits
from hanji.server.registry import AppletRecord, Registry, load_package, prepare
from hanji.server.site import HanjiSite, build_site
from hanji.server.watchdog import DEFAULT_THRESHOLD_MS, StallWatchdog

log = logging.getLogger("hanji.server")

_current: HanjiServer | None = None


def current() -> HanjiServer | None:
    """Return the server of this process, if one was created (any thread)."""
    return _current


class HanjiServer:
    """One Hanji site: routes, applets, the Django pool and the listening port.

    Build it after :func:`hanji.server.django_setup.setup`; take the reactor as an
    argument so tests can pass their own. ``limits`` are the HTTP limits (body and
    head sizes, timeouts; :class:`~hanji.server.limits.Limits`, its defaults if
    None); ``django_queue`` is how many Django jobs may wait for a worker before
    more are refused with 503.
    """

    def __init__(
        self,
        reactor: Any,
        setup: SetupResult,
        *,
        host: str = "127.0.0.1",
        port: int = 8899,
        django_threads: int = 10,
        django_queue: int = 100,
        drain_timeout: float = 10.0,
        access_log: str | None = None,
        token: str | None = None,
        allow_hosts: Sequence[str] = (),
        activate_timeout: float | None = 30.0,
        limits: Limits | None = None,
        stall_threshold_ms: float = DEFAULT_THRESHOLD_MS,
    ) -> None:
        global _current
        self.reactor = reactor
        self.setup = setup
        self.host = host
        self.port = port
        # The access token every request must present (None: none required);
        # see hanji.server.access. Set before listening, then read-only.
        self.token = token
        # The Host names answered (None: any); a loopback server without a token
        # refuses others (DNS rebinding; see access.allowed_host_names).
        self.allowed_hosts = access.allowed_host_names(host, token, tuple(allow_hosts))
        self.drain_timeout = drain_timeout
        # How long on_activate may run before its applet is marked failed (None: no limit).
        self.activate_timeout = activate_timeout
        # Workers still running an on_activate that timed out (reactor thread): the
        # drain does not wait for them.
        self._abandoned = 0
        self.registry = Registry()
        self.limits = limits or Limits()
        self.pool = DjangoPool(django_threads, django_queue)
        self.django_resource = wsgi_resource(reactor, self.pool)
        self.site: HanjiSite = build_site(self, access_log, self.limits)
        self.listening_port: Any = None
        self._swap_lock = defer.DeferredLock()
        self.watchdog = StallWatchdog(reactor, stall_threshold_ms, self._serving, self._applet_packages)
        tracking.install(reactor)
        _current = self

    # -- addresses ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL the site answers on (any thread)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The URL to open in a browser: ``url/?token=…`` when a token is required,
        else ``url/`` (any thread)."""
        return f"{self.url}/?token={self.token}" if self.token else f"{self.url}/"

    def _serving(self) -> tuple[str | None, str] | None:
        """Return ``(applet_id, "METHOD /path")`` of the request being rendered, if
        any; read by the stall watchdog's thread (reads only)."""
        request = self.site.serving
        if request is None:
            return None
        try:
            method = request.method.decode("ascii", "replace")
            # The path only: the query may carry the access token (?token=).
            path = request.path.decode("utf-8", "replace")
        except Exception:
            return None
        parts = path.split("/")
        applet_id = parts[2] if len(parts) > 2 and parts[1] in ("res", "ws", "static") and parts[2] else None
        return applet_id, f"{method} {path}"

    def _applet_packages(self) -> dict[str, str]:
        """Return the package of each active packaged applet by id (any thread)."""
        return {r.id: r.package for r in self.registry.active() if r.package}

    # -- start and stop ----------------------------------------------------------

    def start(self, *, port_fallback: bool = False) -> defer.Deferred[None]:
        """Start the pool, listen and activate the packaged applets; reactor thread.

        With ``port_fallback`` a taken port moves to the next free one (logged).
        """
        assert_reactor_thread("HanjiServer.start()")
        if not self.pool.started:
            self.pool.start()
        self.listen(port_fallback=port_fallback)
        self.watchdog.start()
        return self.activate_packages()

    def listen(self, *, port_fallback: bool = False) -> None:
        """Listen on ``host:port`` (or the next free port); reactor thread."""
        assert_reactor_thread("HanjiServer.listen()")
        if self.listening_port is not None:
            return
        wanted = self.port
        for candidate in range(wanted, wanted + (50 if port_fallback else 1)):
            try:
                self.listening_port = self.reactor.listenTCP(candidate, self.site, interface=self.host)
                break
            except net_error.CannotListenError:
                if not port_fallback or candidate == 0:
                    raise
        if self.listening_port is None:
            raise net_error.CannotListenError(
                self.host, wanted, OSError(f"ports {wanted}-{wanted + 49} are all taken; set another port"))
        self.port = self.listening_port.getHost().port
        if self.port != wanted and wanted != 0:
            log.warning("Port %d is taken; Hanji listens on %d instead.", wanted, self.port)
        log.info("Hanji serves %s/", self.url)

    def stop_listening(self) -> defer.Deferred[None]:
        """Stop accepting connections; the port is free when the Deferred fires.
        Reactor thread."""
        assert_reactor_thread("HanjiServer.stop_listening()")
        port, self.listening_port = self.listening_port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def drain(self, timeout: float | None = None) -> defer.Deferred[int]:
        """Wait until no HTTP request is in flight and no Django worker is busy, or
        ``timeout`` passes; fire with the number still in flight. Reactor thread."""
        assert_reactor_thread("HanjiServer.drain()")
        deadline = time.monotonic() + (self.drain_timeout if timeout is None else timeout)
        done: defer.Deferred[int] = defer.Deferred()

        def check() -> None:
            # A Django view goes on after its client left: count busy workers too.
            left = max(len(self.site.in_flight), self.pool.busy() - self._abandoned)
            if left == 0 or time.monotonic() >= deadline:
                if left:
                    log.warning("Drain deadline passed with %d request(s) in flight.", left)
                done.callback(left)
            else:
                self.reactor.callLater(0.02, check)

        check()
        return done

    @defer.inlineCallbacks
    def shutdown(self, timeout: float | None = None) -> Any:
        """Stop listening, drain, deactivate every applet, stop the pool; reactor
        thread. Safe to call twice. Never waits past the drain deadline for a stuck
        Django worker."""
        assert_reactor_thread("HanjiServer.shutdown()")
        deadline = self.drain_timeout if timeout is None else timeout
        self.watchdog.stop()
        yield self.stop_listening()
        left = yield self.drain(deadline)
        hooks_pool = self.pool
        if left and self.pool.started:
            # Workers are stuck past the deadline: leave them behind (daemon threads)
            # and run the on_deactivate hooks on a fresh pool, not queued after them.
            self.pool.stop_without_waiting()
            hooks_pool = DjangoPool(2)
            hooks_pool.start()
        for record in list(self.registry.snapshot().values()):
            if record.state == "active":
                yield self._swap_lock.run(self._deactivate_locked, record.id, hooks_pool, max(deadline, 1.0))
        for pool in {self.pool, hooks_pool}:
            if pool.started:
                if pool.busy():
                    pool.stop_without_waiting()
                else:
                    # Joining idle daemon workers is quick; do it off the reactor.
                    yield deferToThreadPool(self.reactor, self.reactor.getThreadPool(), pool.stop)
        self.pool = DjangoPool(self.pool.max, self.pool.queue)
        self.django_resource = wsgi_resource(self.reactor, self.pool)
        log.info("Hanji stopped.")

    # -- applets --------------------------------------------------------------------

    @defer.inlineCallbacks
    def activate_packages(self) -> Any:
        """Load and activate every applet package found at setup; reactor thread.

        An applet that fails is reported by name with its traceback; the others go on.
        """
        assert_reactor_thread("HanjiServer.activate_packages()")
        for name, tb in self.setup.failures.items():
            self.registry.put(self._failed_record(name, tb))
        for name, path in self.setup.packages.items():
            try:
                record = yield deferToThreadPool(self.reactor, self.pool, load_package, name, path)
            except Exception:
                text = traceback.format_exc()
                _errors.report_failure(name, f"loading applet package '{name}'", text,
                                       f"Applet '{name}' failed to load; the others go on")
                self.registry.put(self._failed_record(name, text))
                continue
            try:
                yield self.activate_record(record)
            except Exception:
                pass  # already logged and recorded by activate_record
        self.log_overlaps()
        log.info("Applet activation finished: %d active, %d failed.",
                 len(self.registry.active()),
                 sum(1 for r in self.registry.snapshot().values() if r.state == "failed"))

    def _failed_record(self, name: str, tb: str) -> AppletRecord:
        from hanji.core.applet import Applet

        record = prepare(Applet(id=name), None, package=name)
        record.state, record.error = "failed", tb
        return record

    def activate(self, applet: Any, web: Any = None) -> defer.Deferred[AppletRecord]:
        """Activate (or hot-swap) an applet given as class or instance; reactor thread."""
        assert_reactor_thread("HanjiServer.activate()")
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
        assert_reactor_thread("HanjiServer.activate_record()")
        return self._swap_lock.run(self._activate_locked, record)

    @defer.inlineCallbacks
    def _activate_locked(self, record: AppletRecord) -> Any:
        old = self.registry.snapshot().get(record.id)
        if old is not None:
            record.version = old.version + 1
            if old.state == "active":
                # Its routes stay mounted (state kept) until the new record replaces it.
                yield self._stop_applet(old, keep_serving=True)
        record.state = "activating"
        work = self._hook(record, self._activate_in_worker, record)
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
                # Don't hold the swap lock for it, or one hung applet would block
                # every later activation and the shutdown; close what it opened
                # when it returns.
                self._abandon(record, work)
                if failure.check(defer.TimeoutError):
                    failure = Failure(ActivationTimeout(record.id, (
                        f"{type(record.applet).__name__}.on_activate() of applet '{record.id}' did not "
                        f"return within {self.activate_timeout:g} s (--activate-timeout); the applet is "
                        "marked failed and its Django worker is left to finish. Keep on_activate short: "
                        "start long or blocking work with deferToThread, or on the reactor.")))
            text = failure.getTraceback()
            record.state, record.error = "failed", text
            record.resources, record.websockets = {}, {}
            _errors.report_failure(record.id, f"{type(record.applet).__name__}.on_activate()", text,
                                   f"Applet '{record.id}' failed to activate; the others go on")
            yield record.applet._hanji_opened.close_all()
            self._mount(record, old)
            failure.raiseException()
        record.state = "active"
        self._mount(record, old)
        log.info("Applet '%s' active (version %d).", record.id, record.version)
        return record

    def _abandon(self, record: AppletRecord, work: defer.Deferred[Any]) -> None:
        """Stop waiting for a running ``on_activate``; when it returns, close what
        it opened. Reactor thread."""
        self._abandoned += 1

        def returned(_: Any) -> Any:
            self._abandoned -= 1
            log.warning("Applet '%s': the abandoned on_activate() returned; closing what it opened.", record.id)
            return record.applet._hanji_opened.close_all()

        work.addBoth(returned)

    def _mount(self, record: AppletRecord, old: AppletRecord | None) -> None:
        """Put ``record`` in place of ``old`` atomically, then retire ``old``; reactor thread."""
        self.registry.put(record)
        self._refresh_django()
        if old is not None and old.state == "active":
            old.state = "deactivated"
            old.applet._hanji_opened.close_closables()

    def _hook(self, record: AppletRecord, hook: Callable[..., Any], *args: Any,
              pool: DjangoPool | None = None) -> defer.Deferred[Any]:
        """Run an applet hook as the applet in a Django worker; reactor thread."""
        return deferToThreadPool(self.reactor, pool or self.pool, tracking.run_as, record.applet, hook, *args)

    def _activate_in_worker(self, record: AppletRecord) -> None:
        """Run ``on_activate`` and build the routes; Django worker thread."""
        record.applet.on_activate()
        if record.package:
            record.urls_module = import_optional(f"{record.package}.urls")
        record.resources = self._build(record, record.web.twisted_dynamic_resources, "resource")
        record.websockets = self._build(record, getattr(record.web, "websocket_resources", []), "websocket")

    def _build(self, record: AppletRecord, classes: list[Any], kind: str) -> dict[str, Any]:
        """Build the applet's resources by path; Django worker thread."""
        table: dict[str, Any] = {}
        for cls in classes or []:
            path = str(getattr(cls, "path", "") or "").strip("/")
            name = getattr(cls, "__name__", type(cls).__name__)
            if path in table:
                raise ValueError(
                    f"Applet '{record.id}': two {kind}s at path '{path}' "
                    f"({type(table[path]).__name__} and {name}); give each its own path."
                )
            if kind == "websocket":
                from hanji.server.websocket import websocket_resource

                table[path] = websocket_resource(record.applet, cls)
            else:
                table[path] = _resource(record, cls, path)
        return table

    @defer.inlineCallbacks
    def _stop_applet(self, record: AppletRecord, keep_serving: bool = False,
                     pool: DjangoPool | None = None, timeout: float | None = None) -> Any:
        """Call ``on_deactivate`` (Django pool, at most ``timeout`` s) and close what
        the applet opened; with ``keep_serving`` its routes and websocket endpoints
        stay up (the caller swaps them, then closes the rest). Reactor thread."""
        where = f"{type(record.applet).__name__}.on_deactivate()"
        hook = self._hook(record, record.applet.on_deactivate, pool=pool)
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
            record.state = "deactivated"

    def deactivate(self, applet_id: str) -> defer.Deferred[None]:
        """Unmount an applet, run its ``on_deactivate`` and close what it opened;
        reactor thread. Raise AppletNotFound for an unknown id."""
        assert_reactor_thread("HanjiServer.deactivate()")
        return self._swap_lock.run(self._deactivate_locked, applet_id)

    @defer.inlineCallbacks
    def _deactivate_locked(self, applet_id: str, pool: DjangoPool | None = None,
                           timeout: float | None = None) -> Any:
        record = self.registry.get(applet_id)
        self.registry.remove(applet_id)
        self._refresh_django()
        if record.state == "active":
            yield self._stop_applet(record, pool=pool, timeout=timeout)
        log.info("Applet '%s' deactivated.", applet_id)

    # -- Django URLs and the routing table ----------------------------------------

    def _refresh_django(self) -> None:
        from hanji.server import urls

        urls.rebuild(self.registry.active())

    def django_matches(self, path: bytes) -> bool:
        """Return True if Django's URLconf resolves ``path``; reactor thread (pure
        computation on imported modules, no I/O)."""
        from django.urls import Resolver404, resolve

        try:
            # What Django resolves is the decoded path (its PATH_INFO).
            resolve(unquote(path.decode("utf-8", "replace").split("?")[0]))
        except Resolver404:
            return False
        except Exception:
            return False
        return True

    def routes(self) -> list[dict[str, Any]]:
        """Return the routing table, Twisted before Django, overlaps marked; any thread."""
        rows: list[dict[str, Any]] = [
            {"url": "/static/hanji/", "served_by": "twisted", "applet": "hanji", "what": "static files"}
        ]
        for record in self.registry.active():
            if record.static_dir:
                rows.append({"url": f"/static/{record.id}/", "served_by": "twisted",
                             "applet": record.id, "what": "static files"})
            for kind, prefix, table in (("resource", "res", record.resources),
                                        ("websocket", "ws", record.websockets)):
                for path, res in table.items():
                    url = f"/{prefix}/{record.id}/{path}"
                    rows.append({"url": url, "served_by": "twisted", "applet": record.id,
                                 "what": f"{kind} {type(res).__name__}",
                                 "overlaps_django": self.django_matches(url.encode())})
        from hanji.server import urls

        for url, applet_id, what in urls.describe():
            rows.append({"url": url, "served_by": "django", "applet": applet_id, "what": what})
        for row in rows:
            row.setdefault("overlaps_django", False)
        return rows

    def log_overlaps(self) -> list[str]:
        """Log every URL served by Twisted that Django also matches; return them."""
        overlaps = [r["url"] for r in self.routes() if r["overlaps_django"]]
        for url in overlaps:
            log.warning("URL %s is defined in both Twisted and Django; Twisted serves it.", url)
        return overlaps

    def call_in_pool(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        """Run ``f`` in the Django pool; reactor thread."""
        assert_reactor_thread("HanjiServer.call_in_pool()")
        return deferToThreadPool(self.reactor, self.pool, f, *args, **kwargs)


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


def _resource(record: AppletRecord, cls: Any, path: str) -> Any:
    """Build one resource of ``twisted_dynamic_resources``: a TwAppletResource class
    (built with the applet), a plain twisted.web resource class (built without
    arguments) or a resource instance; Django worker thread."""
    from twisted.web.resource import IResource

    from hanji.core.utils import TwAppletResource

    if not isinstance(cls, type):
        if IResource.providedBy(cls):
            return cls
    elif issubclass(cls, TwAppletResource):
        return cls(record.applet)
    elif IResource.implementedBy(cls):
        factory: Any = cls
        try:
            res = factory(record.applet)
        except TypeError:
            res = factory()
        if getattr(res, "applet", None) is None:
            res.applet = record.applet
        return res
    raise TypeError(
        f"Applet '{record.id}': {cls!r} in twisted_dynamic_resources (path '{path}') is not a "
        "twisted.web resource; list TwAppletResource subclasses, resource classes or instances."
    )
