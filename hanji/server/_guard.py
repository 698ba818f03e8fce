"""The wrong-thread guard of debug mode: reactor-only calls made from other threads.

Twisted's ``request.write``, ``request.finish``, ``transport.write`` and
``reactor.callLater`` are not thread-safe: called from a Django worker or a thread of
one's own they corrupt a connection now and then, far from the mistake. In debug
mode Hanji makes them raise :class:`~hanji._exceptions.HanjiThreadError` at once, with
what to use instead. Websocket sends go through the connection's transport, so a
plain ``twisted.web.websocket`` transport used from a thread raises too (Hanji's
``TwAppletWebSocket.send()`` and ``broadcast()`` are thread-safe by design).

The guards are installed per object when it is created on the reactor thread (a
request, an HTTP connection's transport, a connection of an applet's port or client)
and only in debug mode: with debug off nothing is wrapped, and creating a request or
connection costs one flag test. ``reactor.callLater`` is checked in Hanji's existing
wrapper (:mod:`hanji.server.tracking`) behind the same flag test.
"""

from __future__ import annotations

from typing import Any, Callable

from hanji import _threads

_WRITE_ADVICE = (
    "use reactor.callFromThread({target}, data), or return a Deferred from render_* "
    "(for blocking work: defer_to_django(f) or deferToThread(f), then write in its callback)"
)
_TRANSPORT_ADVICE = (
    "use reactor.callFromThread(transport.{name}, data) (for a websocket, "
    "TwAppletWebSocket.send() is safe from any thread)"
)
FINISH_ADVICE = (
    "use reactor.callFromThread(request.finish), or return a Deferred from render_* "
    "and let Hanji finish the request"
)
CALL_LATER_ADVICE = (
    "use reactor.callFromThread(reactor.callLater, delay, f), or the applet's "
    "self.call_later(delay, f), which is safe from any thread"
)


def check_call_later() -> None:
    """Raise HanjiThreadError off the reactor thread; called by the callLater wrapper
    after its debug flag test."""
    _threads.check_reactor_thread("reactor.callLater", CALL_LATER_ADVICE)


def _guarded(method: Callable[..., Any], what: str, advice: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _threads.check_reactor_thread(what, advice)
        return method(*args, **kwargs)

    guarded._hanji_guarded = True  # type: ignore[attr-defined]
    return guarded


def guard_request(request: Any) -> None:
    """Make ``request.write`` (and its transport) refuse other threads; reactor
    thread, debug mode only. ``finish`` checks the flag itself (HanjiRequest)."""
    request.write = _guarded(request.write, "request.write",
                             _WRITE_ADVICE.format(target="request.write"))
    guard_transport(getattr(request, "transport", None))


def guard_transport(transport: Any) -> None:
    """Make ``transport.write`` and ``writeSequence`` refuse other threads (once per
    transport); reactor thread, debug mode only."""
    if transport is None or getattr(transport, "_hanji_guarded", False):
        return
    for name in ("write", "writeSequence"):
        method = getattr(transport, name, None)
        if method is not None:
            try:
                setattr(transport, name, _guarded(method, f"transport.{name}",
                                                  _TRANSPORT_ADVICE.format(name=name)))
            except AttributeError:
                return  # a transport with __slots__: left unguarded
    transport._hanji_guarded = True


def guard_protocol(protocol: Any) -> None:
    """Guard the transport ``protocol`` is about to be connected to (an applet's
    port or client connection: see hanji.core._context.on_build); reactor thread, debug mode only."""
    make = protocol.makeConnection

    def makeConnection(transport: Any) -> Any:
        guard_transport(transport)
        return make(transport)

    try:
        protocol.makeConnection = makeConnection
    except AttributeError:
        pass
