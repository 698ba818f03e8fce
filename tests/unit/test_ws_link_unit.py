"""Websocket endpoints and links: a whole handshake over StringTransport, a wsproto
client on the other side, and a Clock for the pings and timeouts."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.testing import StringTransport, StringTransportWithDisconnection
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

from hanji import _errorlog
from hanji._exceptions import WebSocketRefused
from hanji.core import _context
from hanji.core.applet import Applet
from hanji.core.utils import TwAppletWebSocket
from hanji.server.http.site import HanjiSite
from hanji.server.websocket.endpoint import Endpoint
from hanji.server.websocket.link import Link


class Echo(TwAppletWebSocket):
    """Records its hooks in ``applet.log`` and echoes every message."""

    path = "echo"
    ping_interval = 5.0
    ping_timeout = 3.0
    close_timeout = 2.0
    max_message_size = 10

    def on_open(self) -> None:
        self.applet.log.append("open")

    def on_message(self, message: str | bytes) -> None:
        self.applet.log.append(("message", message))
        if message == "fail":
            raise ValueError("bad message")
        self.send(message)

    def on_close(self, code: int) -> None:
        self.applet.log.append(("close", code))


class Conn:
    """One client connection: the server's channel and transport, and a wsproto client."""

    def __init__(self, site: HanjiSite, clock: Any) -> None:
        self.channel = site.buildProtocol(None)
        self.channel.callLater = clock.callLater
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.channel
        self.channel.makeConnection(self.transport)
        self.client = WSConnection(ConnectionType.CLIENT)

    def feed(self, event: Any) -> None:
        """Send ``event`` from the client to the server."""
        self.channel.dataReceived(self.client.send(event))

    def received(self) -> list[Any]:
        """Return the events the server sent since the last call."""
        data = self.transport.value()
        self.transport.clear()
        self.client.receive_data(data)
        return list(self.client.events())

    @property
    def lost(self) -> bool:
        return not self.transport.connected


class Harness:
    """An endpoint of ``socket_class`` mounted at /ws/app/echo on a HanjiSite."""

    def __init__(self, clock: Any, socket_class: type[TwAppletWebSocket] = Echo) -> None:
        self.clock = clock
        self.applet = Applet(id="app")
        self.applet.log = []  # type: ignore[attr-defined]
        self.endpoint = Endpoint(self.applet, socket_class, reactor=clock)
        root, ws, app = Resource(), Resource(), Resource()
        root.putChild(b"ws", ws)
        ws.putChild(b"app", app)
        app.putChild(b"echo", self.endpoint)
        self.site = HanjiSite(root)

    @property
    def log(self) -> list[Any]:
        return self.applet.log  # type: ignore[attr-defined, no-any-return]

    def connect(self) -> Conn:
        """Open one connection (the whole handshake) and return it."""
        conn = Conn(self.site, self.clock)
        conn.feed(Request(host="localhost", target="/ws/app/echo"))
        assert isinstance(conn.received()[0], AcceptConnection)
        return conn

    def link(self) -> Link:
        [link] = self.endpoint.links
        return link


@pytest.fixture
def harness(clock: Any) -> Harness:
    """Return an Echo endpoint mounted on a site, on the test clock."""
    return Harness(clock)


# -- the handshake and messages -----------------------------------------------------------


def test_handshake_opens_the_link(harness: Harness) -> None:
    """A handshake answers 101, calls on_open and counts the link, not the request."""
    conn = Conn(harness.site, harness.clock)
    conn.feed(Request(host="localhost", target="/ws/app/echo"))
    assert conn.transport.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert isinstance(conn.received()[0], AcceptConnection)
    assert harness.log == ["open"]
    link = harness.link()
    assert link.is_open and link.socket.is_open
    assert _context.open_websockets[Echo] == {link: None}
    assert Echo.connections() == [link.socket]
    assert harness.site.in_flight == set()
    assert list(harness.site.upgraded) == [conn.channel]


def test_messages_are_delivered_and_echoed(harness: Harness) -> None:
    """A text and a binary message reach on_message and send() answers each in kind."""
    conn = harness.connect()
    conn.feed(Message(data="hi"))
    conn.feed(Message(data=b"\x00\x01"))
    received = conn.received()
    assert [(type(e), e.data) for e in received] == [(TextMessage, "hi"), (BytesMessage, b"\x00\x01")]
    assert harness.log[1:] == [("message", "hi"), ("message", b"\x00\x01")]


def test_broadcast_reaches_every_open_link(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """broadcast() on the reactor thread sends a dict as JSON text to every open connection."""
    monkeypatch.setattr(threadable, "ioThread", threadable.getThreadID())  # this thread is the reactor's
    first, second = harness.connect(), harness.connect()
    Echo.broadcast({"n": 1})
    for conn in (first, second):
        [event] = conn.received()
        assert isinstance(event, TextMessage) and event.data == '{"n": 1}'


def test_message_over_the_limit_closes_with_1009(harness: Harness) -> None:
    """A message over max_message_size is not delivered and closes the link with 1009."""
    conn = harness.connect()
    conn.feed(Message(data="x" * 11))
    [event] = conn.received()
    assert isinstance(event, CloseConnection) and event.code == 1009
    assert event.reason == "message over 10 bytes"
    assert ("message", "x" * 11) not in harness.log


def test_failing_hook_closes_with_1011_and_is_recorded(harness: Harness) -> None:
    """A hook that raises closes the link with 1011 and records the error for the applet."""
    conn = harness.connect()
    conn.feed(Message(data="fail"))
    [event] = conn.received()
    assert isinstance(event, CloseConnection) and event.code == 1011
    [error] = _errorlog.all_errors("app")
    assert error.where == "Echo.on_message() at /ws/app/echo"
    assert "ValueError: bad message" in error.traceback


# -- pings --------------------------------------------------------------------------------------


def test_idle_link_is_pinged_after_ping_interval(harness: Harness) -> None:
    """A silent peer gets a ping once ping_interval has passed, not before."""
    conn = harness.connect()
    harness.clock.advance(4.9)
    assert conn.received() == []
    harness.clock.advance(0.1)
    assert conn.received() == [Ping(payload=b"hanji")]


def test_traffic_postpones_the_ping(harness: Harness) -> None:
    """A message from the peer postpones the next ping to ping_interval after it."""
    conn = harness.connect()
    harness.clock.advance(3)
    conn.feed(Message(data="hi"))
    conn.received()
    harness.clock.advance(2)  # t=5: the peer spoke 2 s ago
    assert conn.received() == []
    harness.clock.advance(3)  # t=8
    assert conn.received() == [Ping(payload=b"hanji")]


def test_pong_keeps_the_link_and_rearms_the_ping(harness: Harness) -> None:
    """A pong in time keeps the link open and the next ping comes ping_interval later."""
    conn = harness.connect()
    harness.clock.advance(5)
    [ping] = conn.received()
    conn.feed(ping.response())
    harness.clock.advance(3)  # the ping timeout has passed
    assert conn.received() == [] and not conn.lost
    harness.clock.advance(2)
    assert conn.received() == [Ping(payload=b"hanji")]


def test_unanswered_ping_drops_the_link_as_1006(harness: Harness) -> None:
    """No pong within ping_timeout sends 1011, drops the connection and reports 1006 to on_close."""
    conn = harness.connect()
    link = harness.link()
    harness.clock.advance(5)
    conn.received()
    harness.clock.advance(2.9)
    assert not conn.lost
    harness.clock.advance(0.1)
    [event] = conn.received()
    assert isinstance(event, CloseConnection) and event.code == 1011 and event.reason == "ping timeout"
    assert conn.lost
    assert link.code == 1006
    assert harness.log[-1] == ("close", 1006)
    assert harness.endpoint.links == {} and Echo not in _context.open_websockets
    assert link.lost.called
    assert not link.timer.active()


def test_no_pings_without_ping_interval(clock: Any) -> None:
    """An endpoint with ping_interval None never pings."""

    class Quiet(Echo):
        ping_interval = None

    harness = Harness(clock, Quiet)
    conn = harness.connect()
    clock.advance(1000)
    assert conn.received() == [] and not conn.lost


# -- closing ---------------------------------------------------------------------------------


def test_server_close_runs_the_closing_handshake(harness: Harness) -> None:
    """close() sends the code and reason, ignores later sends, and on_close gets the code."""
    conn = harness.connect()
    socket = harness.link().socket
    socket.close(1000, "bye")
    [event] = conn.received()
    assert isinstance(event, CloseConnection) and (event.code, event.reason) == (1000, "bye")
    assert not socket.is_open and socket.close_code == 1000
    socket.send("ignored")
    assert conn.transport.value() == b""
    assert not conn.lost  # waiting for the peer's close frame
    conn.feed(event.response())
    assert conn.lost
    assert harness.log[-1] == ("close", 1000)


def test_silent_peer_is_dropped_after_close_timeout(harness: Harness) -> None:
    """A peer that never answers the close frame is dropped after close_timeout."""
    conn = harness.connect()
    harness.link().close_now(1000, "bye")
    harness.clock.advance(1.9)
    assert not conn.lost
    harness.clock.advance(0.1)
    assert conn.lost and conn.transport.disconnected  # aborted
    assert harness.log[-1] == ("close", 1000)


def test_peer_close_code_reaches_on_close(harness: Harness) -> None:
    """The code of the peer's close frame is the one on_close gets."""
    conn = harness.connect()
    conn.feed(CloseConnection(code=4000, reason="done"))
    [event] = conn.received()
    assert isinstance(event, CloseConnection) and event.code == 4000  # answered
    assert conn.lost
    assert harness.log[-1] == ("close", 4000)


def test_dropped_connection_is_1006(harness: Harness) -> None:
    """A connection lost without a close frame reports 1006 to on_close."""
    conn = harness.connect()
    conn.transport.loseConnection()
    assert harness.log[-1] == ("close", 1006)
    assert harness.endpoint.links == {}


def test_close_all_closes_with_1001_and_fires_once_all_are_lost(harness: Harness) -> None:
    """close_all sends 1001 to every link and fires only once every connection is gone."""
    first, second = harness.connect(), harness.connect()
    done = harness.endpoint.close_all()
    for conn in (first, second):
        [event] = conn.received()
        assert isinstance(event, CloseConnection) and event.code == 1001
    assert not done.called
    first.feed(CloseConnection(code=1001))
    assert not done.called
    second.transport.loseConnection()
    assert done.called
    # The code sent first is the one reported, however the connection ended.
    assert harness.log[2:] == [("close", 1001), ("close", 1001)]
    assert harness.endpoint.retired


def test_close_all_without_links_fires_at_once(harness: Harness) -> None:
    """close_all on an endpoint with no connection fires at once and retires it."""
    done = harness.endpoint.close_all()
    assert done.called and harness.endpoint.retired


def test_retired_endpoint_refuses_a_handshake_with_503(harness: Harness) -> None:
    """A handshake on a retired endpoint is answered 503 with Retry-After, not upgraded."""
    harness.endpoint.close_all()
    conn = Conn(harness.site, harness.clock)
    conn.feed(Request(host="localhost", target="/ws/app/echo"))
    value = conn.transport.value()
    assert value.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 1\r\n" in value
    assert b"503 Service Unavailable: applet 'app' was deactivated or is being replaced" in value
    assert harness.log == []


# -- the Link state machine on a fake wire ------------------------------------------------------


class FakeWire:
    """Stands for Twisted's websocket transport when wsproto is not reachable."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.transport = StringTransport()

    def sendTextMessage(self, text: str) -> None:
        self.sent.append(("text", text))

    def sendBytesMessage(self, data: bytes) -> None:
        self.sent.append(("bytes", data))

    def ping(self, payload: bytes) -> None:
        self.sent.append(("ping", payload))

    def loseConnection(self, code: int, reason: str) -> None:
        self.sent.append(("close", code, reason))


def fake_link(clock: Any) -> tuple[Link, FakeWire]:
    """Return a link on a fake wire (no wsproto connection to watch), open."""
    applet = Applet(id="app")
    applet.log = []  # type: ignore[attr-defined]
    endpoint = Endpoint(applet, Echo, reactor=clock)
    socket = Echo(applet)
    link = Link(endpoint, socket)
    socket._hanji_link = link
    wire = FakeWire()
    link.negotiationStarted(wire)
    link.negotiationFinished()
    return link, wire


def test_send_now_before_open_and_after_close_is_ignored(clock: Any) -> None:
    """send_now writes nothing before the link opens nor once it is closing."""
    applet = Applet(id="app")
    link = Link(Endpoint(applet, Echo, reactor=clock), Echo(applet))
    link.send_now("early")  # no wire yet: would raise if it tried
    link, wire = fake_link(clock)
    link.send_now("one")
    link.close_now(1000, "bye")
    link.send_now("two")
    assert wire.sent == [("text", "one"), ("close", 1000, "bye")]


def test_close_now_is_once_and_keeps_the_first_code(clock: Any) -> None:
    """A second close_now sends nothing and the first code stays."""
    link, wire = fake_link(clock)
    link.close_now(1000, "first")
    link.close_now(1011, "second")
    assert wire.sent == [("close", 1000, "first")]
    assert link.code == 1000 and link.closing


def test_fake_wire_checks_message_size_itself(clock: Any) -> None:
    """Without wsproto to watch, the link checks whole messages against the limit (1009)."""
    link, wire = fake_link(clock)
    link.textMessageReceived("x" * 10)
    link.textMessageReceived("\u00e9" * 6)  # 12 bytes in UTF-8
    assert link.socket.applet.log == ["open", ("message", "x" * 10)]
    assert wire.sent == [("text", "x" * 10), ("close", 1009, "message over 10 bytes")]


def test_fake_wire_ping_timeout_notes_1006(clock: Any) -> None:
    """Without a pong the link pings once, then closes noting 1006 as its code."""
    link, wire = fake_link(clock)
    clock.advance(5)
    assert wire.sent == [("ping", b"hanji")]
    link.pongReceived(b"hanji")
    clock.advance(5)
    clock.advance(3)
    assert wire.sent == [("ping", b"hanji"), ("ping", b"hanji"), ("close", 1011, "ping timeout")]
    assert link.code == 1006


# -- HTTP refusals -----------------------------------------------------------------------------------


def handshake_request(method: bytes = b"GET", **headers: bytes) -> DummyRequest:
    """Return a DummyRequest for /ws/app/echo with a valid handshake's headers (and
    ``headers`` replacing or, with an empty value, removing some)."""
    request = DummyRequest([])
    request.method = method
    request.path = request.uri = b"/ws/app/echo"
    fields = {b"host": b"localhost", b"connection": b"Upgrade", b"upgrade": b"websocket",
              b"sec-websocket-version": b"13", b"sec-websocket-key": b"dGhlIHNhbXBsZSBub25jZQ=="}
    fields.update({k.replace("_", "-").encode(): v for k, v in headers.items()})
    for name, value in fields.items():
        if value:
            request.requestHeaders.setRawHeaders(name, [value])
    return request


def refuse(endpoint: Endpoint, request: DummyRequest) -> bytes:
    body = endpoint.render(request)
    assert body is not NOT_DONE_YET
    return body  # type: ignore[no-any-return]


def test_plain_get_is_426(clock: Any) -> None:
    """A GET that is not a websocket handshake is answered 426 with Upgrade: websocket."""
    endpoint = Endpoint(Applet(id="app"), Echo, reactor=clock)
    request = handshake_request(upgrade=b"", connection=b"")
    body = refuse(endpoint, request)
    assert request.responseCode == 426
    assert request.responseHeaders.getRawHeaders(b"upgrade") == [b"websocket"]
    assert body.startswith(b"426 Upgrade Required: /ws/app/echo is a websocket endpoint")
    assert b"hanji.connect('app', 'echo')" in body


def test_head_is_405_allowing_get(clock: Any) -> None:
    """HEAD is answered 405 with Allow: GET and no body."""
    endpoint = Endpoint(Applet(id="app"), Echo, reactor=clock)
    request = handshake_request(b"HEAD")
    assert refuse(endpoint, request) == b""
    assert request.responseCode == 405
    assert request.responseHeaders.getRawHeaders(b"allow") == [b"GET"]


def test_broken_handshake_is_400(clock: Any) -> None:
    """A handshake without its key is answered 400 saying why."""
    endpoint = Endpoint(Applet(id="app"), Echo, reactor=clock)
    request = handshake_request(sec_websocket_key=b"")
    body = refuse(endpoint, request)
    assert request.responseCode == 400
    assert body.startswith(b"400 Bad Request: not a valid websocket handshake: ")


def test_retired_endpoint_is_503(clock: Any) -> None:
    """A handshake on a retired endpoint is answered 503 with Retry-After."""
    endpoint = Endpoint(Applet(id="app"), Echo, reactor=clock)
    endpoint.close_all()
    request = handshake_request()
    body = refuse(endpoint, request)
    assert request.responseCode == 503
    assert request.responseHeaders.getRawHeaders(b"retry-after") == [b"1"]
    assert body.startswith(b"503 Service Unavailable: applet 'app' was deactivated")


def test_foreign_origin_is_403(clock: Any) -> None:
    """A handshake from a foreign Origin is answered 403 naming it and the setting."""
    endpoint = Endpoint(Applet(id="app"), Echo, reactor=clock)
    request = handshake_request(origin=b"https://evil.example")
    body = refuse(endpoint, request)
    assert request.responseCode == 403
    assert b"origin https://evil.example may not connect" in body
    assert b"Echo.allowed_origins" in body


@pytest.mark.parametrize("accept, status, text", [
    (lambda self, request: False, 403, b"Refusing.accept() refused the connection."),
    (lambda self, request: (_ for _ in ()).throw(WebSocketRefused(429, "slow down")), 429, b"slow down"),
    (lambda self, request: 1 / 0, 500, b"Refusing.accept() at /ws/app/echo failed"),
])
def test_accept_decides_the_refusal(clock: Any, accept: Any, status: int, text: bytes) -> None:
    """accept() returning False is 403, raising a status is that status, raising else is 500."""

    class Refusing(Echo):
        pass

    Refusing.accept = accept  # type: ignore[method-assign]
    endpoint = Endpoint(Applet(id="app"), Refusing, reactor=clock)
    request = handshake_request()
    body = refuse(endpoint, request)
    assert request.responseCode == status
    assert text in body
    assert endpoint.pending == 0
    assert len(_errorlog.all_errors("app")) == (1 if status == 500 else 0)


def test_async_accept_refusal_is_written_when_it_fires(clock: Any) -> None:
    """An accept() Deferred firing False later writes the 403 then."""
    decision: defer.Deferred[bool] = defer.Deferred()

    class Later(Echo):
        def accept(self, request: Any) -> Any:
            return decision

    endpoint = Endpoint(Applet(id="app"), Later, reactor=clock)
    request = handshake_request()
    assert endpoint.render(request) is NOT_DONE_YET
    assert endpoint.pending == 1 and request.written == []
    decision.callback(False)
    assert request.responseCode == 403 and request.finished == 1
    assert b"".join(request.written).startswith(b"403 Forbidden: Later.accept() refused")
    assert endpoint.pending == 0


def test_client_leaving_cancels_async_accept(clock: Any) -> None:
    """A client that leaves while accept() decides cancels it; nothing is written."""
    cancelled: list[bool] = []
    decision: defer.Deferred[bool] = defer.Deferred(lambda _: cancelled.append(True))

    class Later(Echo):
        def accept(self, request: Any) -> Any:
            return decision

    endpoint = Endpoint(Applet(id="app"), Later, reactor=clock)
    request = handshake_request()
    endpoint.render(request)
    request.processingFailed(Failure(ConnectionError("gone")))
    assert cancelled == [True]
    assert request.written == [] and request.finished == 0
    assert endpoint.pending == 0


def test_full_endpoint_is_403(clock: Any) -> None:
    """A handshake past max_connections is answered 403 naming the limit."""

    class One(Echo):
        max_connections = 1

    harness = Harness(clock, One)
    harness.connect()
    request = handshake_request()
    body = refuse(harness.endpoint, request)
    assert request.responseCode == 403
    assert body == b"403 Forbidden: /ws/app/echo is full (1 connections).\n"
