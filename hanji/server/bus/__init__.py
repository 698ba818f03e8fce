"""The broadcast bus: ``broadcast()`` and ``hanji.publish`` across processes and hosts.

``TwAppletWebSocket.broadcast(message)`` and ``hanji.publish(topic, message)``
go through the bus of the running server, which hands each message to every
process sharing it; each process delivers it to its own connections of that
endpoint (or its own ``hanji.subscribe`` callbacks), on its reactor thread::

    import hanji

    def on_price(message):                    # reactor thread, as the applet
        Prices.broadcast(message)

    stop = hanji.subscribe("prices", on_price)   # in on_activate, for instance
    hanji.publish("prices", {"EUR": 1.08})       # any thread, any worker

Backends, chosen by ``hanji serve --bus URL`` or ``HANJI_BUS``:

- in-process (the default; ``local``): a kernel, or one ``hanji serve`` process;
  delivery happens at once, in the call;
- the supervisor's relay (``unix:///path``; the default of ``--workers``, which
  passes the path to its workers): :mod:`.relay` and :mod:`.unix`;
- Redis (``redis://host:port/db``, ``rediss://`` for TLS) across hosts:
  :mod:`.redis_bus`.

What the bus promises: every connection of an endpoint that is open while a
message goes round gets it once, and the connections of one endpoint get its
messages in one order, in every process (each process delivers only what the
relay or Redis hands back, in their order).

What it does not promise:

- delivery to a connection that is not open at that moment (a client that is
  reconnecting misses what was broadcast meanwhile: resend the state on
  ``on_open``);
- persistence or replay: nothing is stored, a process that starts late or
  reconnects does not get earlier messages;
- delivery across processes while the relay or Redis cannot be reached: messages
  then reach the publishing process's own connections only (logged once per
  outage), and cross-process delivery resumes by itself when it is back; a message
  in flight when the connection broke may be lost;
- an order between different endpoints or topics, or between ``broadcast()`` and a
  connection's own ``send()``;
- back-pressure across processes: each connection keeps its ``max_send_buffer``
  bound (a slow reader is closed with 1013), the relay drops a worker that stops
  reading and Redis applies its own ``client-output-buffer-limit``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from twisted.internet import defer

from hanji import _threads
from hanji.core._context import current_applet, current_bus, opened_of, set_bus
from hanji.server.bus._codec import encode
from hanji.server.bus.hub import APPLET_PREFIX, HUB, Hub, websocket_topic

__all__ = ["Backend", "Bus", "LocalBackend", "check_url", "open_bus", "publish", "subscribe"]

log = logging.getLogger("hanji.bus")


class Backend(Protocol):
    """What carries messages between processes; every method on the reactor thread."""

    name: str

    def start(self) -> defer.Deferred[None]: ...

    def publish(self, topic: str, body: bytes) -> None: ...

    def stop(self) -> defer.Deferred[None]: ...


class LocalBackend:
    """This process only: deliver in the publishing call; reactor thread."""

    name = "local"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def start(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def publish(self, topic: str, body: bytes) -> None:
        self.hub.deliver(topic, body)

    def stop(self) -> defer.Deferred[None]:
        return defer.succeed(None)


class Bus:
    """The running server's bus: a backend and this process's hub; reactor thread."""

    def __init__(self, backend: Backend, hub: Hub = HUB) -> None:
        self.backend = backend
        self.hub = hub

    @property
    def name(self) -> str:
        """What the backend is (``local``, ``unix:///…``, ``redis://…``)."""
        return self.backend.name

    def publish(self, topic: str, body: bytes) -> None:
        """Publish ``body`` (an encoded message) on the wire topic ``topic``."""
        self.backend.publish(topic, body)

    def publish_websocket(self, cls: type, data: str | bytes) -> None:
        """Publish a websocket message for every connection of endpoint ``cls``
        (``TwAppletWebSocket.broadcast``)."""
        self.backend.publish(websocket_topic(cls), encode(data))

    def start(self) -> defer.Deferred[None]:
        """Start the backend and make this the bus of ``broadcast()``; fire when the
        backend is connected or its first attempt failed."""
        set_bus(self)
        log.info("Broadcast bus: %s.", self.name)
        return self.backend.start()

    def stop(self) -> defer.Deferred[None]:
        """Stop the backend; ``broadcast()`` is local again."""
        if current_bus() is self:
            set_bus(None)
        return self.backend.stop()


def check_url(url: str | None) -> tuple[str, str]:
    """Return ``(kind, target)`` of bus URL ``url``: ``("local", "")``,
    ``("unix", path)`` or ``("redis", url)``; any thread. Raise ValueError naming
    the fix for a URL of another kind."""
    url = (url or "").strip()
    if url in ("", "local", "local://"):
        return "local", ""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "unix":
        path = url[len("unix://"):]
        if not path.startswith("/"):
            raise ValueError(f"bus URL {url!r}: give an absolute socket path, as in unix:///run/hanji/bus.sock.")
        return "unix", path
    if scheme in ("redis", "rediss"):
        return "redis", url
    raise ValueError(f"bus URL {url!r} is not understood: use local, unix:///path/to/socket or "
                     "redis://host:port/db (--bus or HANJI_BUS).")


def open_bus(reactor: Any, url: str | None) -> Bus:
    """Return the (unstarted) bus ``url`` names (see :func:`check_url`): None,
    empty or ``local`` for this process only, ``unix:///path`` for the supervisor's
    relay, ``redis://…`` or ``rediss://…`` for Redis. Raise ValueError for anything
    else, naming the fix."""
    kind, target = check_url(url)
    if kind == "unix":
        from hanji.server.bus.unix import RelayBackend

        return Bus(RelayBackend(reactor, HUB, target))
    if kind == "redis":
        from hanji.server.bus.redis_bus import RedisBackend

        return Bus(RedisBackend(reactor, HUB, target))
    return Bus(LocalBackend(HUB))


# -- the public API (hanji.publish, hanji.subscribe) ---------------------------------


def _topic(topic: str) -> str:
    if not isinstance(topic, str) or not topic:
        raise TypeError(f"A bus topic is a non-empty str, not {topic!r}.")
    return APPLET_PREFIX + topic


def publish(topic: str, message: str | bytes | dict[str, Any] | list[Any]) -> None:
    """Publish ``message`` on ``topic`` to every ``subscribe(topic, …)`` callback of
    every process sharing the server's bus; any thread.

    ``message`` is str, bytes, or a dict or list (sent as JSON: subscribers get an
    equal copy). Each subscriber gets it once, after the messages published on
    ``topic`` before it, in the same order in every process; see
    :mod:`hanji.server.bus` for what is not promised. Off the reactor thread the
    publishing is handed to the reactor, so this returns before it is done.
    Raise TypeError for another type of message or topic.
    """
    wire, body = _topic(topic), encode(message)
    if _threads.in_reactor_thread():
        _publish_now(wire, body)
    else:
        from twisted.internet import reactor

        reactor.callFromThread(_publish_now, wire, body)  # type: ignore[attr-defined]


def _publish_now(topic: str, body: bytes) -> None:
    """Hand the message to the running server's bus (this process's hub when
    none runs); reactor thread."""
    bus = current_bus()
    if bus is None:
        HUB.deliver(topic, body)
    else:
        bus.publish(topic, body)


def subscribe(topic: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
    """Call ``callback(message)`` for every message published on ``topic`` from now
    on, in any process sharing the bus; return a function that unsubscribes. Any thread.

    The callback runs on the reactor thread (it must not block; it may return a
    Deferred or be a coroutine), as the applet whose code subscribed: a
    subscription made by an applet (``on_activate``, a hook) ends when the applet
    is deactivated or replaced. An exception it raises is logged (``hanji.bus``)
    and the other subscribers still get the message.
    """
    wire = _topic(topic)
    if not callable(callback):
        raise TypeError(f"subscribe({topic!r}, …) needs a callable, not {callback!r}.")
    applet = current_applet.get()
    unsubscribe = HUB.subscribe(wire, callback, applet)
    opened = opened_of(applet)
    if opened is not None:
        if _threads.in_reactor_thread():
            opened.record("closable", unsubscribe)
        else:
            from twisted.internet import reactor

            reactor.callFromThread(opened.record, "closable", unsubscribe)  # type: ignore[attr-defined]
    return unsubscribe
