"""The Hanji server: one site on one reactor, its Django pool and its listening port.

:class:`HanjiServer` puts the parts together and owns listening, draining and
shutting down; the applets' life (activation, hot swap, deactivation) is
:class:`~hanji.server.lifecycle.AppletLifecycle`, the routing table
:mod:`hanji.server.routes`. Methods say which thread they must run on: the CLI runs
the reactor in the main thread, the notebook extension in crochet's thread
(``HanjiReactor``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import defer, error as net_error
from twisted.internet.threads import deferToThreadPool

from hanji import _compat, _config
from hanji._threads import assert_reactor_thread
from hanji.core._context import set_django_pool
from hanji.django.bridge import wsgi_resource
from hanji.django.pool import DjangoPool
from hanji.server import routes, tracking
from hanji.server.bus import open_bus
from hanji.server.http import answers
from hanji.server.http.limits import Limits
from hanji.server.http.site import HanjiSite, build_site
from hanji.server.lifecycle import AppletLifecycle
from hanji.server.placement import LeaseBackend, Placements
from hanji.server.registry import AppletRecord, Registry
from hanji.server.security import access
from hanji.server.watchdog import DEFAULT_THRESHOLD_MS, StallWatchdog

if TYPE_CHECKING:
    from hanji.django.setup import SetupResult

log = logging.getLogger("hanji.server")


class HanjiServer:
    """One Hanji site: routes, applets, the Django pool and the listening port.

    Build it after :func:`hanji.django.setup.setup`; take the reactor as an
    argument so tests can pass their own. ``limits`` are the HTTP limits (body and
    head sizes, timeouts; :class:`~hanji.server.http.limits.Limits`, its defaults if
    None); ``django_queue`` is how many Django jobs may wait for a worker before
    more are refused with 503.
    """

    def __init__(
        self,
        reactor: Any,
        setup: SetupResult,
        *,
        host: str = "127.0.0.1",
        port: int = _config.DEFAULT_PORT,
        django_threads: int = 10,
        django_queue: int = 100,
        drain_timeout: float = 10.0,
        access_log: str | None = None,
        token: str | None = None,
        allow_hosts: Sequence[str] = (),
        activate_timeout: float | None = 30.0,
        limits: Limits | None = None,
        stall_threshold_ms: float = DEFAULT_THRESHOLD_MS,
        leases: LeaseBackend | None = None,
        lease_interval: float = 5.0,
        listen_fd: int | None = None,
        bus: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.setup = setup
        self.host = host
        self.port = port
        # The access token every request must present (None: none required);
        # see hanji.server.security.access. Set before listening, then read-only.
        self.token = token
        # The Host names answered (None: any); a loopback server without a token
        # refuses others (DNS rebinding; see access.allowed_host_names).
        self.allowed_hosts = access.allowed_host_names(host, token, tuple(allow_hosts))
        self.drain_timeout = drain_timeout
        self.registry = Registry()
        self.limits = limits or Limits()
        self.pool = DjangoPool(django_threads, django_queue)
        # Where "exactly one" applets run: through ``leases`` (hanji.server.placement),
        # or all here when None (one process: a notebook kernel).
        self.placements = Placements(reactor, leases, lease_interval)
        self.applets = AppletLifecycle(reactor, self.registry, lambda: self.pool,
                                       activate_timeout=activate_timeout,
                                       routes_changed=self._routes_changed,
                                       placements=self.placements)
        self.django_resource = wsgi_resource(reactor, self.pool, self)
        # The broadcast bus (hanji.server.bus): ``bus`` or HANJI_BUS, else this
        # process only; started with the server, stopped after the applets.
        self.bus_url = _config.bus_url() if bus is None else bus
        self.bus = open_bus(reactor, self.bus_url)
        self.site: HanjiSite = build_site(self, access_log, self.limits)
        self.listening_port: Any = None
        # A listening socket bound by the supervisor of `hanji serve --workers N`,
        # served with adoptStreamPort instead of binding host:port (None: bind).
        self.listen_fd = listen_fd
        # Ports tried and found taken by the last listen() (port_fallback); reactor thread.
        self.skipped_ports: list[int] = []
        # Ends the drain in progress at once (see hurry()); reactor thread.
        self._hurry: list[Callable[[], None]] = []
        self.watchdog = StallWatchdog(reactor, stall_threshold_ms, self._serving, self._applet_packages)
        tracking.install(reactor)

    @property
    def activate_timeout(self) -> float | None:
        """How long ``on_activate`` may run before its applet is marked failed."""
        return self.applets.activate_timeout

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
        set_django_pool(self.reactor, self.pool)
        # A worker joining the supervisor's shared socket takes connections only once
        # its applets are active (below): its siblings serve them meanwhile.
        adopt_later = self.listen_fd is not None and self.listening_port is None
        if not adopt_later:
            self.listen(port_fallback=port_fallback)
        # The bus first (connected, or its first attempt failed: a few seconds at
        # most), so that what the applets broadcast from the start goes round.
        started: defer.Deferred[None] = self.bus.start()
        started.addCallback(lambda _: self.activate_packages())
        if adopt_later:
            started.addCallback(lambda _: self.listen())

        def watch(result: Any) -> Any:
            # Watch for stalls once started: Hanji's own start-up (imports, the
            # first garbage collections) is not an applet's stall.
            self.watchdog.start()
            # Renew the leases held, retry the standby "exactly one" applets.
            self.placements.start()
            return result

        return started.addCallback(watch)

    def listen(self, *, port_fallback: bool = False) -> None:
        """Listen on ``host:port`` (or the next free port); reactor thread."""
        assert_reactor_thread("HanjiServer.listen()")
        if self.listening_port is not None:
            return
        if self.listen_fd is not None:
            self._adopt(self.listen_fd)
            return
        wanted = self.port
        self.skipped_ports = []
        for candidate in range(wanted, wanted + (50 if port_fallback else 1)):
            try:
                self.listening_port = self.reactor.listenTCP(candidate, self.site, interface=self.host)
                break
            except net_error.CannotListenError:
                if not port_fallback or candidate == 0:
                    raise
                self.skipped_ports.append(candidate)
        if self.listening_port is None:
            raise net_error.CannotListenError(
                self.host, wanted, OSError(f"ports {wanted}-{wanted + 49} are all taken; set another port"))
        self.port = self.listening_port.getHost().port
        if self.skipped_ports:
            log.warning("%s taken; Hanji listens on %d instead.", _ports_taken(self.skipped_ports), self.port)
        log.info("Hanji serves %s/", self.url)

    def _adopt(self, fd: int) -> None:
        """Serve the listening socket ``fd`` that the supervisor bound (shared with
        the other workers), then close ``fd`` (the port holds its own copy); reactor
        thread."""
        import os
        import socket

        with socket.socket(fileno=os.dup(fd)) as probe:
            family = probe.family
        os.set_blocking(fd, False)  # adoptStreamPort requires it; siblings take connections too
        self.listening_port = self.reactor.adoptStreamPort(fd, family, self.site)
        _compat.accept_one_per_wakeup(self.listening_port)
        os.close(fd)
        self.listen_fd = None
        self.port = self.listening_port.getHost().port
        log.info("Hanji serves %s/ (a socket shared with the other workers)", self.url)

    def stop_listening(self) -> defer.Deferred[None]:
        """Stop accepting connections; the port is free when the Deferred fires.
        Reactor thread."""
        assert_reactor_thread("HanjiServer.stop_listening()")
        port, self.listening_port = self.listening_port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def in_flight(self) -> int:
        """Return how much work is still going on: HTTP requests not answered, or
        Django jobs running or queued (a Django view goes on after its client left),
        whichever is more; abandoned ``on_activate`` calls are not counted. Reactor
        thread."""
        return max(len(self.site.in_flight), self.pool.busy() - self.applets.abandoned)

    def drain(self, timeout: float | None = None) -> defer.Deferred[int]:
        """Wait until no HTTP request is in flight and no Django worker is busy, or
        ``timeout`` passes; fire with the number still in flight. Reactor thread.

        Event-driven: the site and the pool tell the drain when a request or a job
        ends, and it fires as soon as the work reaches zero (no polling).
        """
        assert_reactor_thread("HanjiServer.drain()")
        done: defer.Deferred[int] = defer.Deferred()
        site, pool = self.site, self.pool

        def hurry_now() -> None:
            finish(self.in_flight())

        def finish(left: int) -> None:
            if done.called:
                return
            self._hurry.remove(hurry_now)
            site.request_watchers.remove(check)
            pool.job_watchers.remove(job_watcher)
            if timer.active():
                timer.cancel()
            if left:
                log.warning("Drain deadline passed with %d request(s) in flight.", left)
            done.callback(left)

        def check() -> None:
            if self.in_flight() == 0:
                finish(0)

        timer = self.reactor.callLater(self.drain_timeout if timeout is None else timeout,
                                       lambda: finish(self.in_flight()))
        self._hurry.append(hurry_now)
        job_watcher = (self.reactor, check)
        site.request_watchers.append(check)
        pool.job_watchers.append(job_watcher)
        check()
        return done

    def hurry(self) -> None:
        """End a drain in progress now (SIGTERM arrived): the shutdown goes on to
        answer what is left and deactivate the applets; reactor thread."""
        assert_reactor_thread("HanjiServer.hurry()")
        for finish in list(self._hurry):
            finish()

    def _answer_unfinished(self) -> None:
        """Answer the requests still in flight after the drain with 503 (or close
        those whose answer already started), so no client is left with an empty
        reply when the process goes; reactor thread."""
        for request in list(self.site.in_flight):
            if request.finished:
                continue
            if request.startedWriting:
                transport: Any = request.channel.transport if request.channel is not None else None
                if transport is not None:
                    transport.loseConnection()
                continue
            body = answers.answer(request, 503, "Hanji is stopping and could not finish this request in "
                                  "time; retry once it is back.", {b"retry-after": b"5", b"connection": b"close"})
            request.write(body)
            request.finish()

    def _close_waiting_connections(self) -> None:
        """Close this site's HTTP connections that wait for a next request (keep-alive)
        or hold one half received, once the drain is over and before the applets go:
        a request read from one later would find them half stopped (404). The client
        sees its connection closed before any answer and retries on a new one, as
        HTTP allows (with `--workers N`, a sibling answers); reactor thread."""
        site = self.site
        for selectable in set(self.reactor.getReaders()) | set(self.reactor.getWriters()):
            channel = getattr(selectable, "protocol", None)
            if getattr(channel, "factory", None) is not site or channel in site.upgraded:
                continue
            if any(request in site.in_flight for request in getattr(channel, "requests", ())):
                continue
            selectable.loseConnection()

    def _close_upgraded(self) -> None:
        """Drop the upgraded connections still open (plain twisted.web websockets;
        Hanji's own were closed with 1001 when their applets stopped); reactor thread."""
        for channel in list(self.site.upgraded):
            transport: Any = channel.transport
            if transport is not None:
                transport.loseConnection()

    @defer.inlineCallbacks
    def shutdown(self, timeout: float | None = None) -> Any:
        """Stop listening, drain, deactivate every applet, stop the pool; reactor
        thread. Safe to call twice. Never waits past the drain deadline for a stuck
        Django worker."""
        assert_reactor_thread("HanjiServer.shutdown()")
        deadline = self.drain_timeout if timeout is None else timeout
        self.watchdog.stop()
        self.placements.stop_retrying()  # no takeover while stopping
        yield self.stop_listening()
        left = yield self.drain(deadline)
        if left:
            self._answer_unfinished()
        self._close_waiting_connections()
        hooks_pool = self.pool
        if left and self.pool.started:
            # Workers are stuck past the deadline: leave them behind (daemon threads)
            # and run the on_deactivate hooks on a fresh pool, not queued after them.
            self.pool.stop_without_waiting()
            hooks_pool = DjangoPool(2)
            hooks_pool.start()
        yield self.applets.deactivate_all(hooks_pool, max(deadline, 1.0))
        yield self.placements.close()  # after on_deactivate: the next holder finds ports free
        self._close_upgraded()
        for pool in {self.pool, hooks_pool}:
            if pool.started:
                if pool.busy():
                    pool.stop_without_waiting()
                else:
                    # Joining idle daemon workers is quick; do it off the reactor.
                    yield deferToThreadPool(self.reactor, self.reactor.getThreadPool(), pool.stop)
        self.pool = DjangoPool(self.pool.max, self.pool.queue)
        set_django_pool(None, None)
        yield self.bus.stop()
        self.bus = open_bus(self.reactor, self.bus_url)  # a fresh one for a restart
        self.django_resource = wsgi_resource(self.reactor, self.pool, self)
        log.info("Hanji stopped.")

    # -- applets (see AppletLifecycle) ---------------------------------------------------

    @defer.inlineCallbacks
    def activate_packages(self) -> Any:
        """Load and activate every applet package found at setup, then log the URLs
        both Twisted and Django serve; reactor thread."""
        yield self.applets.activate_packages(self.setup)
        self.log_overlaps()

    def activate(self, applet: Any, web: Any = None) -> defer.Deferred[AppletRecord]:
        """Activate (or hot-swap) an applet given as class or instance; reactor thread."""
        return self.applets.activate(applet, web)

    def activate_record(self, record: AppletRecord) -> defer.Deferred[AppletRecord]:
        """Activate (or hot-swap) the applet of ``record``; reactor thread."""
        return self.applets.activate_record(record)

    def deactivate(self, applet_id: str) -> defer.Deferred[None]:
        """Unmount an applet, run its ``on_deactivate`` and close what it opened;
        reactor thread. Raise AppletNotFound for an unknown id."""
        return self.applets.deactivate(applet_id)

    # -- routes ----------------------------------------------------------------------------

    def _routes_changed(self) -> None:
        """Rebuild Django's URLconf from the active applets; reactor thread."""
        from hanji.django import urls

        urls.rebuild(self.registry.active())

    def django_matches(self, path: bytes) -> bool:
        """Return True if Django's URLconf resolves ``path``; any thread."""
        return routes.django_matches(path)

    def routes(self) -> list[dict[str, Any]]:
        """Return the routing table, Twisted before Django, overlaps marked; any thread."""
        return routes.route_table(self.registry)

    def log_overlaps(self) -> list[str]:
        """Log every URL served by Twisted that Django also matches; return them."""
        return routes.log_overlaps(self.registry)

    def call_in_pool(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        """Run ``f`` in the Django pool; reactor thread."""
        assert_reactor_thread("HanjiServer.call_in_pool()")
        return deferToThreadPool(self.reactor, self.pool, f, *args, **kwargs)


def _ports_taken(ports: list[int]) -> str:
    """Return "Port 8899 is" or "Ports 8899, 8900 are" for ``ports``."""
    if len(ports) == 1:
        return f"Port {ports[0]} is"
    return f"Ports {', '.join(map(str, ports))} are"
