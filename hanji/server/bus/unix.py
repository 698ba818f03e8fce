"""A worker's side of the supervisor's relay (``HANJI_BUS=unix:///path``); reactor thread.

The worker keeps one unix-socket connection to the relay
(:mod:`hanji.server.bus.relay`), sends what it publishes and delivers only the
frames the relay sends back, in the relay's order. While the relay cannot be
reached, what this worker publishes is delivered to its own connections only (one
log line when the relay goes, one when it is back) and the connection is retried
with back-off (Twisted's ``ReconnectingClientFactory``, 0.1 s up to 2 s).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from hanji.server.bus._codec import FrameError, FrameReader, pack, unpack_sequenced
from hanji.server.bus._outage import Outage
from hanji.server.bus.hub import Hub

__all__ = ["RelayBackend"]

log = logging.getLogger("hanji.bus")


class _RelayProtocol(protocol.Protocol):
    """The connection to the relay; reactor thread."""

    transport: Any

    def __init__(self, backend: RelayBackend) -> None:
        self.backend = backend
        self.reader = FrameReader()
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.backend.connected(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            for payload in self.reader.feed(data):
                seq, topic, body = unpack_sequenced(payload)
                self.backend.received(seq, topic, body)
        except FrameError as exc:
            log.error("Broadcast relay at %s sent a malformed frame (%s); reconnecting.", self.backend.path, exc)
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.backend.disconnected(self, reason)
        self.lost.callback(None)


class _Factory(protocol.ReconnectingClientFactory):
    initialDelay = 0.1  # type: ignore[assignment]
    maxDelay = 2.0  # type: ignore[assignment]
    factor = 2.0

    def __init__(self, backend: RelayBackend) -> None:
        self.backend = backend

    def buildProtocol(self, addr: Any) -> _RelayProtocol:
        self.resetDelay()
        return _RelayProtocol(self.backend)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.backend.outage.failed(reason.getErrorMessage())
        self.backend.first_attempt_done()
        super().clientConnectionFailed(connector, reason)


class RelayBackend:
    """Publish through the relay at ``path``; reactor thread."""

    def __init__(self, reactor: Any, hub: Hub, path: str) -> None:
        self.reactor = reactor
        self.hub = hub
        self.path = path
        self.name = f"unix://{path}"
        self.outage = Outage(self.name)
        self.link: _RelayProtocol | None = None
        self.last_seq = 0
        self._factory = _Factory(self)
        self._connector: Any = None
        self._ready: defer.Deferred[None] | None = None

    def start(self, timeout: float = 2.0) -> defer.Deferred[None]:
        """Connect to the relay; fire once connected, or once the first attempt
        failed (messages are then delivered locally until it succeeds)."""
        self._ready = defer.Deferred()
        self._connector = self.reactor.connectUNIX(self.path, self._factory, timeout=timeout)
        return self._ready

    def first_attempt_done(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.callback(None)

    def connected(self, link: _RelayProtocol) -> None:
        self.link = link
        self.outage.recovered()
        log.info("Broadcast bus: connected to the relay at %s.", self.path)
        self.first_attempt_done()

    def disconnected(self, link: _RelayProtocol, reason: Failure) -> None:
        if self.link is link:
            self.link = None
        if self._factory.continueTrying:
            self.outage.failed(reason.getErrorMessage())

    def publish(self, topic: str, body: bytes) -> None:
        """Send to the relay; deliver here at once when it cannot be reached."""
        link = self.link
        if link is None or link.transport is None:
            self.hub.deliver(topic, body)
            return
        link.transport.write(pack(topic, body))

    def received(self, seq: int, topic: str, body: bytes) -> None:
        """Deliver what the relay sent back, in its order."""
        self.last_seq = seq
        self.hub.deliver(topic, body)

    def stop(self) -> defer.Deferred[None]:
        """Disconnect for good (no more retries); fire when the connection is closed."""
        self._factory.stopTrying()  # also stops a connection attempt in progress
        self.first_attempt_done()
        link, self.link = self.link, None
        if link is not None and link.transport is not None and not link.lost.called:
            link.transport.loseConnection()
            return link.lost
        return defer.succeed(None)
