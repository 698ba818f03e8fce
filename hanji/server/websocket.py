"""Websocket endpoints of applets: :class:`TwAppletWebSocket`, on the reactor thread.

An applet lists ``TwAppletWebSocket`` subclasses in ``WebUI.websocket_resources``;
:func:`websocket_resource` turns each into a resource that the site mounts at
``/ws/<applet_id>/<path>``. Every connection gets its own instance, built with the
applet, whose hooks run on the reactor thread::

    class Echo(TwAppletWebSocket):
        path = "echo"

        def on_message(self, message):
            self.send(message)

This is built on ``twisted.web.websocket`` (handshake, framing, reassembly of
fragmented messages) and adds what it lacks:

- checks before the handshake (origin, capacity, ``accept()``) answered with a
  clean HTTP status instead of a 500;
- a message size limit (close code 1009) enforced while the message arrives;
- the close code of every connection, given to ``on_close(code)``, and a proper
  closing handshake (wait for the peer's close frame, give up after a timeout);
- idle pings, and dead peers closed after ``ping_timeout``;
- ``broadcast()`` and ``send()`` callable from any thread;
- connections closed (1001) when the applet is deactivated or the server stops.

Invalid UTF-8 in a text message is detected by wsproto, which closes with 1007.
To see close codes and sizes while a message arrives, the wsproto connection of
Twisted's wire protocol is wrapped (:class:`_Watched`); if a future Twisted hides it,
sizes are checked on delivery instead and peer close codes read as 1005.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Iterator
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import WebSocketResource
from wsproto import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from hanji import _threads
from hanji.server import errors as _errors
from hanji.server.tracking import run_as

__all__ = ["TwAppletWebSocket", "WebSocketRefused", "websocket_resource"]

MiB = 1 << 20

# Close codes (RFC 6455, section 7.4.1).
NORMAL, GOING_AWAY, ABNORMAL, TOO_BIG, INTERNAL_ERROR = 1000, 1001, 1006, 1009, 1011

# Open connections by endpoint class, for broadcast(); reactor thread only.
_open: dict[type, dict[_Link, None]] = {}


class WebSocketRefused(Exception):
    """Raise in ``accept()`` to refuse a connection with an HTTP status (default 403)."""

    def __init__(self, status: int = 403, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _encode(message: Any) -> str | bytes:
    """Return ``message`` as a websocket payload: str (text) or bytes (binary);
    dicts and lists become JSON text. Any thread."""
    if isinstance(message, str):
        return message
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, (dict, list)):
        return json.dumps(message)
    raise TypeError(
        f"A websocket message must be str (text), bytes (binary) or a dict/list "
        f"(sent as JSON text), not {type(message).__name__}."
    )


class TwAppletWebSocket:
    """A websocket endpoint of an applet, mounted at ``/ws/<applet_id>/<path>``.

    One instance is built per connection with the applet (``self.applet``); the
    handshake request is ``self.request``. Hooks run on the reactor thread, as the
    applet (what they open is closed with it), and must not block: use
    ``defer_to_django`` or ``deferToThread`` for blocking work. A hook may return a
    Deferred or be a coroutine; if it raises (or its Deferred fails) the error is
    logged under ``hanji.applet.<id>``, kept in ``hanji.errors()``, and the
    connection is closed with 1011.

    Class attributes (per endpoint):
        path: the URL path after ``/ws/<applet_id>/``.
        max_message_size: largest message accepted, in bytes (close code 1009).
        ping_interval: seconds of silence before the server pings (None: never).
        ping_timeout: seconds to wait for a pong before the peer is deemed dead.
        close_timeout: seconds to wait for the peer's close frame after closing.
        allowed_origins: other origins allowed to connect, such as
            ``"https://app.example.com"``, ``"example.com:8080"`` or ``"*"``; the
            server's own origin and clients sending no Origin are always allowed.
        max_connections: open connections allowed at once (None: no limit);
            more are refused with HTTP 403.
    """

    path: ClassVar[str] = ""
    max_message_size: ClassVar[int] = MiB
    ping_interval: ClassVar[float | None] = 20.0
    ping_timeout: ClassVar[float] = 20.0
    close_timeout: ClassVar[float] = 5.0
    allowed_origins: ClassVar[Sequence[str]] = ()
    max_connections: ClassVar[int | None] = None

    def __init__(self, applet: Any) -> None:
        self.applet = applet
        self.request: Any = None
        self._hanji_link: _Link | None = None

    # -- hooks (reactor thread) -----------------------------------------------

    def accept(self, request: Any) -> Any:
        """Decide whether to accept the connection, before the handshake; reactor thread.

        Return False to refuse with HTTP 403, or raise :class:`WebSocketRefused`
        (or any exception with an HTTP ``status``) to refuse with that status. May
        return a Deferred (or be a coroutine) firing with the decision.
        """
        return True

    def on_open(self) -> Any:
        """Handle the opened connection; reactor thread."""

    def on_message(self, message: str | bytes) -> Any:
        """Handle one whole message (str for text, bytes for binary); reactor thread."""

    def on_close(self, code: int) -> Any:
        """Handle the end of the connection with its close code (1006 if it was
        dropped without a close frame); reactor thread."""

    # -- actions ------------------------------------------------------------------

    def send(self, message: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Send a message (str: text, bytes: binary, dict/list: JSON text); any thread.

        Ignored once the connection is closing. Raise RuntimeError before ``on_open``.
        """
        data = _encode(message)
        link = self._hanji_link
        if link is None:
            raise RuntimeError(
                f"{type(self).__name__}.send() called before the connection opened; "
                "send from on_open() on."
            )
        if _threads.in_reactor_thread():
            link.send_now(data)
        else:
            link.reactor.callFromThread(link.send_now, data)

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close the connection with ``code`` (closing handshake); any thread."""
        link = self._hanji_link
        if link is None:
            return
        if _threads.in_reactor_thread():
            link.close_now(code, reason)
        else:
            link.reactor.callFromThread(link.close_now, code, reason)

    @property
    def is_open(self) -> bool:
        """Whether the connection is open and not closing (read on the reactor thread)."""
        link = self._hanji_link
        return link is not None and link.is_open and not link.closing

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closing, else None."""
        return self._hanji_link.code if self._hanji_link is not None else None

    @property
    def logger(self) -> logging.Logger:
        """Return the applet's logger, ``hanji.applet.<id>``."""
        return logging.getLogger(f"hanji.applet.{getattr(self.applet, 'id', '?')}")

    @classmethod
    def connections(cls) -> list[TwAppletWebSocket]:
        """Return the open connections of this endpoint class; reactor thread."""
        return [link.socket for link in _open.get(cls, ())]

    @classmethod
    def broadcast(cls, message: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Send ``message`` to every open connection of this endpoint; any thread.

        Off the reactor thread the sending is handed to the reactor
        (``reactor.callFromThread``), so this returns before it is done.
        """
        data = _encode(message)
        if _threads.in_reactor_thread():
            cls._broadcast_now(data)
        else:
            _reactor().callFromThread(cls._broadcast_now, data)

    @classmethod
    def _broadcast_now(cls, data: str | bytes) -> None:
        """Send ``data`` to every open connection of ``cls``; reactor thread."""
        for link in list(_open.get(cls, ())):
            link.send_now(data)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "not open"
        return f"<{type(self).__name__} /ws/{getattr(self.applet, 'id', '?')}/{self.path} {state}>"


def _status_of(exc: BaseException) -> int | None:
    """Return the HTTP error status an exception carries (``status`` or
    ``status_code``, int or bytes), if any."""
    for name in ("status", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        try:
            code = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if 400 <= code <= 599:
            return code
    return None


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    try:
        parts = urlsplit("//" + netloc)
        return (parts.hostname or "").lower(), parts.port or default_port
    except ValueError:
        return None


def _origin_allowed(request: Any, allowed: Sequence[str]) -> bool:
    """Return True if the request's Origin is the server's own (host and port, as
    the request's Host header names them), is listed in ``allowed``, or is absent
    (a non-browser client); reactor thread."""
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    origin = origin.decode("latin-1").strip()
    if "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    default = 443 if parts.scheme in ("https", "wss") else 80
    theirs = _host_port(parts.netloc, default) if parts.netloc else None
    if theirs is None:
        return False  # "null" (file:// pages, sandboxes) or garbage
    for entry in allowed:
        if "://" in entry:
            e = urlsplit(entry)
            e_default = 443 if e.scheme in ("https", "wss") else 80
            if e.scheme == parts.scheme and _host_port(e.netloc, e_default) == theirs:
                return True
        elif ":" in entry:
            if _host_port(entry, -1) == theirs:
                return True
        elif entry.lower() == theirs[0]:
            return True  # a bare host name allows any port
    host = request.getHeader(b"host")
    own_default = 443 if request.isSecure() else 80
    if host:
        own = _host_port(host.decode("latin-1").strip(), own_default)
    else:
        address = request.getHost()
        own = (str(address.host).lower(), address.port)
    return own == theirs


def _is_upgrade(request: Any) -> bool:
    upgrade = request.getHeader(b"upgrade") or b""
    return b"websocket" in upgrade.lower()


def _handshake_problem(request: Any) -> str | None:
    """Return why the upgrade request is not a valid websocket handshake, or None."""
    raw = request.requestHeaders.getAllRawHeaders()
    headers = [(key, value) for key, values in raw for value in values]
    try:
        H11Handshake(ConnectionType.SERVER).initiate_upgrade_connection(headers, request.path)
    except RemoteProtocolError as exc:
        return str(exc)
    return None


def _plain(request: Any, status: int, message: str) -> bytes:
    """Set an error status and return a plain-text body; reactor thread."""
    phrase = http.RESPONSES.get(status, b"Upgrade Required" if status == 426 else b"Error")
    request.setResponseCode(status, phrase)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return (f"{status} {phrase.decode()}: {message}\n").encode("utf-8")


class _Watched:
    """wsproto's Connection as seen by Twisted's wire protocol, watched: every event
    marks the peer alive, close codes are noted, message sizes are capped, and once
    the link is closing data messages are dropped. Reactor thread."""

    def __init__(self, conn: Any, link: _Link) -> None:
        self._conn = conn
        self._link = link
        self._size = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def events(self) -> Iterator[Any]:
        link = self._link
        for event in self._conn.events():
            link.seen()
            if isinstance(event, CloseConnection):
                link.peer_closing(event.code)
                yield event
            elif link.closing:
                if isinstance(event, Pong):
                    yield event  # pings are not answered while closing (wsproto refuses)
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


class _Link:
    """The wire side of one connection, a ``twisted.web.websocket.WebSocketProtocol``
    driving one :class:`TwAppletWebSocket`. Attributes are owned by the reactor thread."""

    def __init__(self, endpoint: _Endpoint, socket: TwAppletWebSocket) -> None:
        self.endpoint = endpoint
        self.socket = socket
        self.reactor = endpoint.reactor
        self.limit = int(socket.max_message_size)
        self.wire: Any = None
        self.conn: Any = None  # wsproto Connection, when Twisted lets us see it
        self.is_open = False
        self.closing = False
        self.code: int | None = None
        self.last_seen = self.reactor.seconds()
        self.ping_sent: float | None = None
        self.timer: Any = None
        self.abort_timer: Any = None
        self.lost: defer.Deferred[None] = defer.Deferred()

    def call_later(self, delay: float, f: Any) -> Any:
        """Schedule one of the link's own timers outside any applet's context, so
        that deactivation does not cancel it behind the link's back."""
        return run_as(None, self.reactor.callLater, delay, f)

    # -- WebSocketProtocol (called by Twisted, reactor thread) --------------------

    def negotiationStarted(self, transport: Any) -> None:
        self.wire = transport
        conn = getattr(transport, "_wsconn", None)
        if conn is not None and hasattr(conn, "events"):
            self.conn = conn
            transport._wsconn = _Watched(conn, self)

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
        self.lost.callback(None)

    # -- messages -------------------------------------------------------------------

    def deliver(self, message: str | bytes, size: int) -> None:
        """Hand a whole message to ``on_message``; ``size`` is checked only when
        _Watched could not be installed."""
        if self.closing:
            return
        if size > self.limit:
            self.close_now(TOO_BIG, f"message over {self.limit} bytes")
            return
        self.call_hook("on_message", message)

    def send_now(self, data: str | bytes) -> None:
        """Send one message unless the connection is closing; reactor thread."""
        if not self.is_open or self.closing:
            return
        try:
            if isinstance(data, str):
                self.wire.sendTextMessage(data)
            else:
                self.wire.sendBytesMessage(data)
        except LocalProtocolError:
            pass  # the peer began closing in the same turn

    # -- closing ----------------------------------------------------------------------

    def peer_closing(self, code: int) -> None:
        """Note a close frame (or wsproto's verdict on bad data); Twisted answers it."""
        self.note_code(code)
        self.closing = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def note_code(self, code: int) -> None:
        if self.code is None:
            self.code = int(code)

    def close_now(self, code: int, reason: str = "", *, wait_for_peer: bool = True) -> None:
        """Send a close frame and, unless ``wait_for_peer`` is False, wait up to
        ``close_timeout`` for the peer's; reactor thread."""
        if self.closing or self.wire is None:
            return
        self.closing = True
        self.note_code(code)
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        transport = self.wire.transport
        if self.conn is None:
            self.wire.loseConnection(code, reason)
            return
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
        transport = self.wire.transport
        abort = getattr(transport, "abortConnection", None)
        (abort or transport.loseConnection)()

    # -- liveness ---------------------------------------------------------------------

    def seen(self) -> None:
        self.last_seen = self.reactor.seconds()

    def arm_ping(self, delay: float | None = None) -> None:
        interval = self.socket.ping_interval
        if interval and not self.closing:
            self.timer = self.call_later(interval if delay is None else delay, self.ping_due)

    def ping_due(self) -> None:
        """Ping if the peer was silent for ``ping_interval``; reactor thread."""
        interval = float(self.socket.ping_interval or 0)
        idle = self.reactor.seconds() - self.last_seen
        if idle < interval:
            self.arm_ping(interval - idle)
            return
        self.ping_sent = self.reactor.seconds()
        try:
            self.wire.ping(b"hanji")
        except LocalProtocolError:
            return
        self.timer = self.call_later(float(self.socket.ping_timeout), self.pong_due)

    def pong_due(self) -> None:
        """Close the connection if nothing came since the ping; reactor thread."""
        assert self.ping_sent is not None
        if self.last_seen >= self.ping_sent:
            self.arm_ping()
            return
        self.socket.logger.info(
            "%r: no answer to a ping within %ss; closing it.", self.socket, self.socket.ping_timeout
        )
        self.note_code(ABNORMAL)  # the peer is gone: as if the TCP connection dropped
        self.close_now(INTERNAL_ERROR, "ping timeout", wait_for_peer=False)

    # -- hooks ------------------------------------------------------------------------

    def call_hook(self, name: str, *args: Any) -> None:
        """Call ``socket.<name>(*args)`` as the applet; on error log, report and
        close with 1011. Reactor thread."""
        method = getattr(self.socket, name)

        def call() -> Any:
            result = method(*args)
            if inspect.iscoroutine(result):
                result = defer.ensureDeferred(result)  # keeps the applet's context
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
        logging.getLogger(f"hanji.applet.{applet_id}").error("%s failed; closing with 1011:\n%s", where, text)
        _errors.report(applet_id, where, text)
        if name != "on_close":
            self.close_now(INTERNAL_ERROR, f"{cls}.{name}() failed")


class _Endpoint(WebSocketResource):
    """The resource mounted at ``/ws/<applet_id>/<path>`` for one endpoint class:
    checks, ``accept()``, then Twisted's handshake. It is its own protocol factory.
    Attributes are owned by the reactor thread (it is built in a Django worker,
    without touching the reactor)."""

    def __init__(self, applet: Any, socket_class: type[TwAppletWebSocket], reactor: Any = None) -> None:
        super().__init__(self)
        self.applet = applet
        self.socket_class = socket_class
        self.isLeaf = bool(getattr(socket_class, "isLeaf", False))
        self._reactor = reactor
        self.links: dict[_Link, None] = {}
        self.pending = 0
        self._closer_registered = False
        self.url = f"/ws/{getattr(applet, 'id', '?')}/{str(socket_class.path).strip('/')}"

    @property
    def reactor(self) -> Any:
        return self._reactor if self._reactor is not None else _reactor()

    def __repr__(self) -> str:
        return f"<websocket endpoint {self.socket_class.__name__} at {self.url}>"

    # -- HTTP side --------------------------------------------------------------------

    def render_GET(self, request: Any) -> Any:
        """Check the request, ask ``accept()``, then upgrade; reactor thread."""
        cls = self.socket_class
        if not _is_upgrade(request):
            request.setHeader(b"upgrade", b"websocket")
            return _plain(request, 426, f"{self.url} is a websocket endpoint; connect with a "
                          f"websocket client (in a page: hanji.connect('{self.applet.id}', '{cls.path}')).")
        problem = _handshake_problem(request)
        if problem is not None:
            return _plain(request, 400, f"not a valid websocket handshake: {problem}")
        if not _origin_allowed(request, cls.allowed_origins):
            origin = request.getHeader(b"origin").decode("latin-1")
            self.log().info("%s refused origin %s.", self.url, origin)
            return _plain(request, 403, f"origin {origin} may not connect to {self.url}; "
                          f"add it to {cls.__name__}.allowed_origins to allow it.")
        if cls.max_connections is not None and len(self.links) + self.pending >= cls.max_connections:
            return _plain(request, 403, f"{self.url} is full ({cls.max_connections} connections).")
        from hanji.server.render import ArgsDict

        if not isinstance(request.args, ArgsDict):
            request.args = ArgsDict(request.args)
        self.pending += 1
        try:
            socket = cls(self.applet)
            socket.request = request

            def ask() -> Any:
                result = socket.accept(request)
                if inspect.iscoroutine(result):
                    result = defer.ensureDeferred(result)
                return result

            decision = run_as(self.applet, ask)
        except Exception:
            self.pending -= 1
            return self.refused_by(request, Failure())
        if isinstance(decision, defer.Deferred):
            request.notifyFinish().addErrback(lambda _: decision.cancel())
            decision.addCallbacks(
                lambda ok: self.decided(request, socket, ok),
                lambda failure: self.refused_by(request, failure),
            )
            decision.addBoth(self.answer_later, request)
            return NOT_DONE_YET
        self.pending -= 1
        return self.decided(request, socket, decision)

    def answer_later(self, body: Any, request: Any) -> None:
        """Write the answer of an asynchronous ``accept()``; reactor thread."""
        self.pending -= 1
        if body is NOT_DONE_YET or request._disconnected or request.finished:
            return
        request.write(body)
        request.finish()

    def decided(self, request: Any, socket: TwAppletWebSocket, ok: Any) -> Any:
        if ok is False:
            return _plain(request, 403, f"{type(socket).__name__}.accept() refused the connection.")
        if request._disconnected:
            return NOT_DONE_YET
        request._hanji_socket = socket
        result = WebSocketResource.render_GET(self, request)
        if result is NOT_DONE_YET:
            # Upgraded: the HTTP idle timeout no longer applies; pings do.
            set_timeout = getattr(request.channel, "setTimeout", None)
            if set_timeout is not None:
                set_timeout(None)
        return result

    def refused_by(self, request: Any, failure: Failure) -> bytes:
        """Turn an exception from ``accept()`` into an HTTP answer; reactor thread."""
        if failure.check(defer.CancelledError):
            return b""
        status = _status_of(failure.value)
        if status is not None:
            message = str(getattr(failure.value, "message", "") or failure.value or "refused")
            return _plain(request, status, message)
        where = f"{self.socket_class.__name__}.accept() at {self.url}"
        text = failure.getTraceback()
        self.log().error("%s failed:\n%s", where, text)
        _errors.report(str(self.applet.id), where, text)
        body = _plain(request, 500, f"{where} failed; the traceback is in the server log "
                      f"(logger hanji.applet.{self.applet.id}).")
        return body + (b"\n" + text.encode("utf-8") if _threads.debug_enabled() else b"")

    def buildProtocol(self, request: Any) -> _Link:
        """Return the wire side of the accepted connection; reactor thread."""
        socket = request._hanji_socket
        link = _Link(self, socket)
        socket._hanji_link = link
        return link

    def log(self) -> logging.Logger:
        return logging.getLogger(f"hanji.applet.{getattr(self.applet, 'id', '?')}")

    # -- open connections ---------------------------------------------------------------

    def opened(self, link: _Link) -> None:
        """Count an open connection; the first registers :meth:`close_all` with the
        applet, which runs it at deactivation. Reactor thread."""
        self.links[link] = None
        _open.setdefault(type(link.socket), {})[link] = None
        if not self._closer_registered:
            opened_things = getattr(self.applet, "_hanji_opened", None)
            if opened_things is not None:
                opened_things.record("closable", self.close_all)
                self._closer_registered = True

    def closed(self, link: _Link) -> None:
        self.links.pop(link, None)
        links = _open.get(type(link.socket))
        if links is not None:
            links.pop(link, None)
            if not links:
                del _open[type(link.socket)]

    def close_all(self, code: int = GOING_AWAY, reason: str = "going away") -> defer.Deferred[None]:
        """Close every open connection of this endpoint; fire when all are gone.
        Reactor thread."""
        self._closer_registered = False
        links = list(self.links)
        for link in links:
            link.close_now(code, reason)
        waits = [link.lost for link in links if not link.lost.called]
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)


def websocket_resource(applet: Any, ws_class: type[TwAppletWebSocket], reactor: Any = None) -> IResource:
    """Return the resource serving ``ws_class`` for ``applet`` at ``/ws/<id>/<path>``.

    Called at activation in a Django worker thread; touches no reactor state.
    Raise TypeError if ``ws_class`` is not a TwAppletWebSocket subclass.
    """
    if not (inspect.isclass(ws_class) and issubclass(ws_class, TwAppletWebSocket)):
        raise TypeError(
            f"Applet '{getattr(applet, 'id', '?')}': websocket_resources lists {ws_class!r}, "
            "which is not a subclass of hanji.core.utils.TwAppletWebSocket."
        )
    if int(ws_class.max_message_size) <= 0:
        raise ValueError(f"{ws_class.__name__}.max_message_size must be a positive number of bytes.")
    return _Endpoint(applet, ws_class, reactor)

