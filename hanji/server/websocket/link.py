"""The wire side of one websocket connection; reactor thread only.

:class:`Link` is the ``twisted.web.websocket.WebSocketProtocol`` that drives one
:class:`~hanji.server.websocket.TwAppletWebSocket`: it calls the hooks as the
applet, pings idle peers and runs the closing handshake. :class:`Watched` wraps the
wsproto connection inside Twisted's wire protocol, to see close codes and message
sizes while a message arrives (Twisted only reports whole messages and no codes).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Iterator

from twisted.internet import defer
from twisted.python.failure import Failure
from wsproto.events import BytesMessage, CloseConnection, Pong, TextMessage
from wsproto.utilities import LocalProtocolError

from hanji import _compat
from hanji import _errorlog as _errors
from hanji.core._context import run_as
from hanji.core.utils import ABNORMAL, INTERNAL_ERROR, TOO_BIG, TRY_AGAIN_LATER

if TYPE_CHECKING:
    from hanji.server.websocket.endpoint import Endpoint
    from hanji.core.utils import TwAppletWebSocket


class Watched:
    """wsproto's Connection as Twisted's wire protocol sees it, watched: every event
    marks the peer alive, close codes are noted, message sizes are capped, and once
    the link is closing, data and pings are dropped. Reactor thread."""

    def __init__(self, conn: Any, link: Link) -> None:
        self._conn = conn
        self._link = link
        self._size = 0  # bytes of the message being received

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def events(self) -> Iterator[Any]:
        """Yield wsproto's events that Twisted should handle."""
        link = self._link
        for event in self._conn.events():
            link.seen()
            if isinstance(event, CloseConnection):
                link.peer_closing(event.code)
                yield event
            elif link.closing:
                if isinstance(event, Pong):
                    yield event  # a ping is not answered after our close frame (wsproto refuses)
            elif isinstance(event, (TextMessage, BytesMessage)):
                data = event.data
                if isinstance(data, str) and not data.isascii():
                    self._size += len(data.encode("utf-8", "surrogatepass"))
                else:
                    self._size += len(data)
                if self._size > link.limit:
                    link.close_now(TOO_BIG, f"message over {link.limit} bytes")
                    continue
                if event.message_finished:
                    self._size = 0
                yield event
            else:
                yield event


class Link:
    """One connection: a ``WebSocketProtocol`` for Twisted, driving one
    TwAppletWebSocket. Attributes are owned by the reactor thread."""

    def __init__(self, endpoint: Endpoint, socket: TwAppletWebSocket) -> None:
        self.endpoint = endpoint
        self.socket = socket
        self.reactor = endpoint.reactor
        self.limit = int(socket.max_message_size)
        self.wire: Any = None  # Twisted's wire protocol (WebSocketTransport)
        self.conn: Any = None  # wsproto's Connection, when Twisted lets us see it
        self.is_open = False
        self.closing = False
        self.code: int | None = None
        self.last_seen = self.reactor.seconds()
        self.ping_sent: float | None = None  # when the unanswered ping went out
        self.timer: Any = None  # next ping, or the wait for its pong
        self.abort_timer: Any = None  # end of the closing handshake
        self.lost: defer.Deferred[None] = defer.Deferred()
        # Send-side bound (see TwAppletWebSocket.max_send_buffer): the transport
        # tells the channel when its unsent bytes pass it (congested) and when they
        # drained; ``over`` counts what was sent since the bound was passed.
        self.max_unsent = int(socket.max_send_buffer)
        self.congested = False
        self.over = 0

    def call_later(self, delay: float, f: Any) -> Any:
        """Schedule one of the link's own timers outside any applet's context, so
        that the applet's deactivation does not cancel it behind the link's back."""
        return run_as(None, self.reactor.callLater, delay, f)

    # -- WebSocketProtocol, called by Twisted ----------------------------------------

    def negotiationStarted(self, transport: Any) -> None:
        self.wire = transport
        # The HTTP channel stays the TCP transport's producer: have it tell us when
        # this connection's unsent output passes the bound, and set the bound.
        channel = getattr(self.socket.request, "channel", None)
        if channel is not None and hasattr(channel, "output_listener"):
            channel.output_listener = self
        tcp = getattr(transport, "transport", None)
        if tcp is not None and hasattr(tcp, "bufferSize"):
            tcp.bufferSize = self.max_unsent
        conn = _compat.websocket_connection(transport)
        if conn is not None and hasattr(conn, "events"):
            self.conn = conn
            _compat.set_websocket_connection(transport, Watched(conn, self))

    def negotiationFinished(self) -> None:
        self.is_open = True
        self.endpoint.opened(self)
        self.arm_ping()
        self.call_hook("on_open")

    def textMessageReceived(self, message: str) -> None:
        self.deliver(message, len(message.encode("utf-8", "surrogatepass")) if self.conn is None else 0)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.deliver(bytes(data), len(data) if self.conn is None else 0)

    def pongReceived(self, payload: bytes) -> None:
        self.seen()

    def connectionLost(self, reason: Failure) -> None:
        was_open, self.is_open, self.closing = self.is_open, False, True
        for timer in (self.timer, self.abort_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self.note_code(ABNORMAL)
        self.endpoint.closed(self)
        if was_open:
            self.call_hook("on_close", self.code)
        # Free what the peer never read now, not when the garbage collector gets to
        # the cycles Twisted's and wsproto's objects form (gc.freeze() may keep them).
        tcp = getattr(self.wire, "transport", None)
        if tcp is not None:
            _compat.discard_unsent(tcp)
        self.wire = self.conn = None
        self.lost.callback(None)

    # -- messages ------------------------------------------------------------------------

    def deliver(self, message: str | bytes, size: int) -> None:
        """Hand a whole message to ``on_message``; ``size`` is checked here only
        when Watched could not be installed."""
        if self.closing:
            return
        if self.conn is None:
            self.seen()
        if size > self.limit:
            self.close_now(TOO_BIG, f"message over {self.limit} bytes")
            return
        self.call_hook("on_message", message)

    def send_now(self, data: str | bytes) -> bool:
        """Send one message unless the connection is closing; return whether the
        connection is still writable (open, and its unsent output under the bound).

        Past the bound, messages are still queued until ``max_send_buffer`` more
        bytes wait; the next one closes the connection with 1013 (Try Again
        Later): the peer does not read fast enough, and the server will not hold
        more for it. The applet's ``on_close`` gets 1013.
        """
        if not self.admit(len(data)):
            return False
        try:
            if isinstance(data, str):
                self.wire.sendTextMessage(data)
            else:
                self.wire.sendBytesMessage(data)
        except LocalProtocolError:
            return False  # the peer's close frame came in the same turn
        return not self.congested

    def admit(self, size: int) -> bool:
        """Return whether a message of ``size`` may be sent now: not once the
        connection is closing, nor past the send bound, which closes it with 1013
        (see :meth:`send_now`)."""
        if not self.is_open or self.closing:
            return False
        if self.congested:
            self.over += size
            if self.over > self.max_unsent:
                self.socket.logger.info(
                    "%r: the peer does not read; %d bytes wait to be sent (max_send_buffer %d): "
                    "closing with 1013.", self.socket, self.max_unsent + self.over, self.max_unsent)
                self.close_now(TRY_AGAIN_LATER, "too slow a reader", wait_for_peer=False)
                return False
        return True

    def output_full(self) -> None:
        """The unsent output passed ``max_send_buffer``: stop reading the peer's
        messages (its requests would only add answers) until it drained; called by
        the channel when the transport pauses it (on every write while over)."""
        if self.congested:
            return
        self.congested, self.over = True, 0
        tcp = getattr(self.wire, "transport", None)
        if tcp is not None and not self.closing:
            tcp.pauseProducing()

    def output_drained(self) -> None:
        """The unsent output drained: read the peer again; called by the channel
        when the transport resumes it."""
        self.congested, self.over = False, 0
        tcp = getattr(self.wire, "transport", None)
        if tcp is not None:
            tcp.resumeProducing()

    # -- closing ----------------------------------------------------------------------------

    def note_code(self, code: int) -> None:
        """Remember the first close code seen or sent."""
        if self.code is None:
            self.code = int(code)

    def peer_closing(self, code: int) -> None:
        """Note a close frame (or wsproto's verdict on bad data, such as 1007);
        Twisted answers it and drops the connection."""
        self.note_code(code)
        self.closing = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def close_now(self, code: int, reason: str = "", *, wait_for_peer: bool = True) -> None:
        """Send a close frame, then wait up to ``close_timeout`` for the peer's
        (unless ``wait_for_peer`` is False) before dropping the connection."""
        if self.closing or self.wire is None:
            return
        self.closing = True
        self.note_code(code)
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if self.conn is None:
            self.wire.loseConnection(code, reason)
            return
        transport = self.wire.transport
        try:
            transport.write(self.conn.send(CloseConnection(code, reason)))
        except LocalProtocolError:
            wait_for_peer = False
        if not wait_for_peer:
            transport.loseConnection()
        # A peer that never answers (or never reads) must not keep the socket.
        delay = float(self.socket.close_timeout) if wait_for_peer else 1.0
        self.abort_timer = self.call_later(delay, self.give_up)

    def give_up(self) -> None:
        if self.wire is None:
            return  # already lost
        transport = self.wire.transport
        abort = getattr(transport, "abortConnection", None)
        (abort or transport.loseConnection)()

    # -- liveness ------------------------------------------------------------------------------

    def seen(self) -> None:
        """Note traffic from the peer; an awaited pong (or anything) re-arms the pings."""
        self.last_seen = self.reactor.seconds()
        if self.ping_sent is not None:
            self.ping_sent = None
            if self.timer is not None and self.timer.active():
                self.timer.cancel()
            self.arm_ping()

    def arm_ping(self, delay: float | None = None) -> None:
        interval = self.socket.ping_interval
        if interval and not self.closing:
            self.timer = self.call_later(interval if delay is None else delay, self.ping_due)

    def ping_due(self) -> None:
        """Ping if the peer was silent for ``ping_interval``."""
        interval = float(self.socket.ping_interval or 0)
        idle = self.reactor.seconds() - self.last_seen
        if idle < interval:
            self.arm_ping(interval - idle)
            return
        try:
            self.wire.ping(b"hanji")
        except LocalProtocolError:
            return
        self.ping_sent = self.reactor.seconds()
        self.timer = self.call_later(float(self.socket.ping_timeout), self.pong_due)

    def pong_due(self) -> None:
        """Drop the connection: nothing came since the ping (seen() would have
        cancelled this call)."""
        self.socket.logger.info(
            "%r: no answer to a ping within %ss; dropping it.", self.socket, self.socket.ping_timeout
        )
        self.note_code(ABNORMAL)  # the peer is gone: as if the TCP connection dropped
        self.close_now(INTERNAL_ERROR, "ping timeout", wait_for_peer=False)

    # -- hooks -----------------------------------------------------------------------------------

    def call_hook(self, name: str, *args: Any) -> None:
        """Call ``socket.<name>(*args)`` as the applet (a coroutine is run, a
        Deferred watched); on error log, report and close with 1011."""
        method = getattr(self.socket, name)

        def call() -> Any:
            result = method(*args)
            if inspect.iscoroutine(result):
                result = defer.ensureDeferred(result)  # runs in the applet's context
            return result

        try:
            result = run_as(self.socket.applet, call)
        except Exception:
            self.hook_failed(name, Failure())
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(lambda failure: self.hook_failed(name, failure))

    def hook_failed(self, name: str, failure: Failure) -> None:
        cls = type(self.socket).__name__
        applet_id = str(getattr(self.socket.applet, "id", "?"))
        where = f"{cls}.{name}() at {self.endpoint.url}"
        text = failure.getTraceback()
        closing = name != "on_close"
        _errors.report_failure(applet_id, where, text,
                               f"{where} failed" + ("; closing with 1011" if closing else ""))
        if closing:
            self.close_now(INTERNAL_ERROR, f"{cls}.{name}() failed")
