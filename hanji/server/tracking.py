"""Track what an applet opens on the reactor, so it can be closed for it.

While an applet's code runs (``on_activate``, a render method, or a callable that
such code handed to ``reactor.callFromThread``), the context variable ``current_applet``
names the applet. The reactor's ``listenTCP``, ``listenUDP``, ``connectTCP`` and
``callLater`` are wrapped once, at server start, so that what they return is recorded
on that applet. This is what makes the reference's
``reactor.callFromThread(lambda: reactor.listenTCP(1234, factory))`` close its port
when the applet is deactivated, without the applet doing anything.

In debug mode the same wrappers apply the wrong-thread guard (:mod:`hanji.server._guard`):
``callLater`` off the reactor thread raises HanjiThreadError, and the connections of
the factories given to ``listenTCP``/``connectTCP`` get guarded transports.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import weakref
from typing import Any, Callable

from twisted.internet import defer

from hanji import _threads
from hanji.server import _guard

current_applet: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "hanji_current_applet", default=None
)

_installed: set[int] = set()
_install_lock = threading.Lock()


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


def _factory(args: tuple[Any, ...], kwargs: dict[str, Any], at: int) -> Any:
    """Return the factory argument of a listenX/connectX call (positional or keyword)."""
    return args[at] if len(args) > at else kwargs.get("factory")


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
        """Remember ``thing``; must run on the reactor thread."""
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
        False: a hot swap runs them once the new instance is mounted); must run on
        the reactor thread.

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


def _opened_of(applet: Any) -> OpenedThings | None:
    return getattr(applet, "_hanji_opened", None) if applet is not None else None


def _wrap(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
    factory_at = {"port": 1, "connector": 2}.get(kind)

    @functools.wraps(method)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        if _threads._debug:
            # Debug mode's wrong-thread guard (hanji.server._guard); one flag test otherwise.
            if kind == "call":
                _guard.check_call_later()
            elif factory_at is not None:
                on_build(_factory(args, kwargs, factory_at), "_hanji_guards", _guard.guard_protocol)
        opened = _opened_of(current_applet.get())
        if opened is not None and kind == "port":
            opened.track_factory(_factory(args, kwargs, 1))
        if opened is not None and kind == "call" and len(args) > 1:
            # The call runs as the applet too, so what it schedules in turn (a
            # LoopingCall's next tick) is recorded and cancelled with it.
            args = (args[0], contextvars.copy_context().run, *args[1:])
        result = method(*args, **kwargs)
        if opened is not None:
            opened.record(kind, result)
        return result

    tracked._hanji_tracked = True  # type: ignore[attr-defined]
    return tracked


def _wrap_call_from_thread(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call_from_thread(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if current_applet.get() is not None:
            # Carry the applet's context to the reactor thread with the call.
            ctx = contextvars.copy_context()
            return method(ctx.run, f, *args, **kwargs)
        return method(f, *args, **kwargs)

    call_from_thread._hanji_tracked = True  # type: ignore[attr-defined]
    return call_from_thread


def install(reactor: Any) -> None:
    """Wrap the reactor's opening methods once (idempotent, any thread)."""
    with _install_lock:
        if id(reactor) in _installed:
            return
        for name, kind in (
            ("listenTCP", "port"),
            ("listenUDP", "port"),
            ("listenUNIX", "port"),
            ("connectTCP", "connector"),
            ("callLater", "call"),
        ):
            method = getattr(reactor, name, None)
            if method is not None and not getattr(method, "_hanji_tracked", False):
                setattr(reactor, name, _wrap(method, kind))
        reactor.callFromThread = _wrap_call_from_thread(reactor.callFromThread)
        _installed.add(id(reactor))


def run_as(applet: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``f`` with ``applet`` as the current applet (any thread)."""
    token = current_applet.set(applet)
    try:
        return f(*args, **kwargs)
    finally:
        current_applet.reset(token)
