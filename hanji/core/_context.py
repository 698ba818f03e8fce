"""What the applet model needs to know at run time, without importing the server.

Four pieces of state, each a deliberate process-wide global (this is the one place
that says so):

- ``current_applet``: a context variable naming the applet whose code runs now
  (``on_activate``, a websocket hook, or a callable such code handed to
  ``reactor.callFromThread``). The server's reactor wrappers
  (:mod:`hanji.server.tracking`) read it to record what the applet opens on
  :class:`OpenedThings`, so it can be closed at deactivation. A context variable,
  not an argument, because the seed's code calls the *global* reactor
  (``reactor.listenTCP``) and cannot pass an applet along.
- ``open_websockets``: the open connections of each ``TwAppletWebSocket`` class, for
  its ``broadcast()`` classmethod, which has no instance to start from.
- the running server's Django pool (:func:`django_pool`), for ``defer_to_django(f)``,
  which, like Twisted's ``deferToThread``, is called without a server reference.
  Set by the server when it starts and cleared when it stops.
- the running server's broadcast bus (:func:`current_bus`), for ``broadcast()``,
  which has no server reference either; set and cleared like the pool.

Everything else is passed explicitly. Nothing here imports the reactor.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from typing import Any, Callable

from twisted.internet import defer

current_applet: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "hanji_current_applet", default=None
)

# Open connections by TwAppletWebSocket class (a dict used as an ordered set of
# links); reactor thread only.
open_websockets: dict[type, dict[Any, None]] = {}

_pool_lock = threading.Lock()
_django: tuple[Any, Any] | None = None  # (reactor, DjangoPool) of the running server


def set_django_pool(reactor: Any, pool: Any) -> None:
    """Name the reactor and Django pool that ``defer_to_django`` uses (None, None
    when the server stops); any thread."""
    global _django
    with _pool_lock:
        _django = None if pool is None else (reactor, pool)


def django_pool() -> tuple[Any, Any] | None:
    """Return ``(reactor, pool)`` of the running server, or None; any thread."""
    return _django


_bus: Any = None  # the running server's hanji.server.bus.Bus, or None


def set_bus(bus: Any) -> None:
    """Name the bus that ``broadcast()`` publishes on (None when the server stops);
    reactor thread."""
    global _bus
    _bus = bus


def current_bus() -> Any:
    """Return the running server's bus (``publish_websocket(cls, data)``), or None
    when no server runs in this process; any thread."""
    return _bus


def run_as(applet: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``f`` with ``applet`` as the current applet (any thread)."""
    token = current_applet.set(applet)
    try:
        return f(*args, **kwargs)
    finally:
        current_applet.reset(token)


def on_build(factory: Any, marker: str, hook: Callable[[Any], Any]) -> None:
    """Call ``hook(protocol)`` on every protocol ``factory`` builds from now on,
    once per ``marker``; reactor thread. Anything without ``buildProtocol`` (a UDP
    ``DatagramProtocol``) or that refuses new attributes is left as it is."""
    if factory is None or getattr(factory, marker, False) or not hasattr(factory, "buildProtocol"):
        return
    build = factory.buildProtocol

    def buildProtocol(addr: Any) -> Any:
        protocol = build(addr)
        if protocol is not None:
            hook(protocol)
        return protocol

    try:
        factory.buildProtocol = buildProtocol
        setattr(factory, marker, True)
    except AttributeError:
        pass


class OpenedThings:
    """What one applet opened: ports, connectors, delayed calls and closables.

    Mutated on the reactor thread only.
    """

    def __init__(self) -> None:
        self.ports: list[Any] = []
        self.connectors: weakref.WeakSet[Any] = weakref.WeakSet()
        self.calls: weakref.WeakSet[Any] = weakref.WeakSet()
        self.closables: list[Callable[[], Any]] = []
        self.protocols: weakref.WeakSet[Any] = weakref.WeakSet()

    def track_factory(self, factory: Any) -> None:
        """Record every protocol ``factory`` builds, so that connections accepted on
        an applet's port are closed with it; reactor thread."""
        on_build(factory, "_hanji_tracked", self.protocols.add)

    def record(self, kind: str, thing: Any) -> None:
        """Remember ``thing`` (kind ``port``, ``connector``, ``call`` or
        ``closable``); reactor thread."""
        if kind == "port":
            self.ports.append(thing)
        elif kind == "connector":
            self.connectors.add(thing)
        elif kind == "call":
            self.calls.add(thing)
        else:
            self.closables.append(thing)

    def close_closables(self) -> defer.Deferred[None]:
        """Run the registered closers (websocket endpoints...); reactor thread."""
        waits = []
        closables, self.closables = self.closables, []
        for close in closables:
            try:
                result = close()
            except Exception:
                continue
            if isinstance(result, defer.Deferred):
                waits.append(result)
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    def close_all(self, closables: bool = True) -> defer.Deferred[None]:
        """Close everything recorded (the closers too unless ``closables`` is
        False: a hot swap runs them once the new instance is mounted); reactor
        thread.

        The Deferred fires once every listening port has stopped, so the port
        numbers are free when it fires.
        """
        waits = []
        for call in list(self.calls):
            if call.active():
                call.cancel()
        for connector in list(self.connectors):
            try:
                connector.disconnect()
            except Exception:
                pass
        if closables:
            waits.append(self.close_closables())
        for port in self.ports:
            waits.append(defer.maybeDeferred(port.stopListening))
        for protocol in list(self.protocols):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.loseConnection()
        self.ports = []
        self.calls, self.protocols, self.connectors = weakref.WeakSet(), weakref.WeakSet(), weakref.WeakSet()
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)


def opened_of(applet: Any) -> OpenedThings | None:
    """Return what ``applet`` opened (None for no applet); any thread."""
    return getattr(applet, "_hanji_opened", None) if applet is not None else None
