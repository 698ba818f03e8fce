"""The HTTP side of a websocket endpoint; reactor thread only.

:class:`Endpoint` is the resource mounted at ``/ws/<applet_id>/<path>``. Before
handing the request to ``twisted.web.websocket.WebSocketResource`` for the handshake
it checks what Twisted would answer with a 500 or not at all, and answers itself
with a plain-text status:

    426  a plain GET (not a websocket handshake)
    405  any other method, HEAD included (``Allow: GET``)
    400  a broken handshake
    403  a foreign Origin, a full endpoint, or ``accept()`` returning False
    4xx  ``accept()`` raising an exception with an HTTP status
    500  ``accept()`` raising anything else (logged and reported)
    503  the applet was stopped (deactivated, or being replaced in a hot swap)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import h11
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import WebSocketResource
from wsproto import ConnectionType
from wsproto.handshake import H11Handshake
from wsproto.utilities import ProtocolError

from hanji import _threads
from hanji.server import errors as _errors
from hanji.server._ws_link import Link
from hanji.server.render import use_args_dict
from hanji.server.tracking import run_as
from hanji.server.websocket import GOING_AWAY, TwAppletWebSocket, _open, _reactor


def status_of(exc: BaseException) -> int | None:
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


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def _first(request: Any, name: bytes) -> str | None:
    """Return the first entry of a header that proxies may have made a
    comma-separated list (``X-Forwarded-Host: outer, inner``), or None."""
    value = request.getHeader(name)
    if not value:
        return None
    return value.decode("latin-1").split(",")[0].strip() or None


def _own_host(request: Any) -> tuple[str, int | None] | None:
    """Return the host name and port under which the client reached the server, the
    port None when the client's URL had none, or None for a garbled header.

    A reverse proxy's ``X-Forwarded-Host`` wins over ``Host``, which names the proxy's
    upstream. When it names no port, the client's scheme would tell the default, but
    Hanji behind a TLS-terminating proxy sees plain HTTP: only ``X-Forwarded-Proto``
    says which, and without it the port stays unknown (None).
    """
    host = _first(request, b"x-forwarded-host") or _first(request, b"host")
    if host is None:
        address = request.getHost()
        return str(address.host).lower(), address.port
    try:
        parts = urlsplit("//" + host)
        name, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if port is None:
        proto = (_first(request, b"x-forwarded-proto") or "").lower()
        if proto in ("http", "https", "ws", "wss"):
            port = _default_port(proto)
    return name, port


def origin_allowed(request: Any, allowed: Sequence[str]) -> bool:
    """Return True if the request's Origin is absent (a non-browser client), is the
    server's own, or is in ``allowed``: ``"*"``, ``"https://host[:port]"``,
    ``"host:port"`` or a bare ``"host"`` (any port).

    The server's own origin is the host (and port) the client asked for: the
    ``X-Forwarded-Host`` of a reverse proxy, else ``Host``. If it names no port,
    only host names are compared (behind a TLS-terminating proxy Hanji cannot
    know the client's scheme) unless ``X-Forwarded-Proto`` gives the scheme; an
    explicit port must match the Origin's.
    """
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    return same_origin(request, origin.decode("latin-1"), allowed)


def same_origin(request: Any, origin: str, allowed: Sequence[str] = ()) -> bool:
    """Return True if ``origin`` (``scheme://host[:port]``) is the server's own, as
    :func:`origin_allowed` defines it, or in ``allowed``; pure."""
    origin = origin.strip()
    if "*" in allowed or origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False  # e.g. "http://[::1" (a broken IPv6 literal)
    theirs = _host_port(parts.netloc, _default_port(parts.scheme)) if parts.netloc else None
    if theirs is None:
        return False  # "null" (file:// pages, sandboxed frames) or garbage
    for entry in allowed:
        if "://" in entry:
            e = urlsplit(entry)
            if e.scheme == parts.scheme and _host_port(e.netloc, _default_port(e.scheme)) == theirs:
                return True
        elif ":" in entry:
            if _host_port(entry, -1) == theirs:
                return True
        elif entry.lower() == theirs[0]:
            return True
    own = _own_host(request)
    if own is None or not own[0]:
        return False
    name, port = own
    return name == theirs[0] and (port is None or port == theirs[1])


def _is_upgrade(request: Any) -> bool:
    return b"websocket" in (request.getHeader(b"upgrade") or b"").lower()


def _handshake_problem(request: Any) -> str | None:
    """Return why the request is not a valid websocket handshake, or None."""
    raw = request.requestHeaders.getAllRawHeaders()
    headers = [(key, value) for key, values in raw for value in values]
    try:
        H11Handshake(ConnectionType.SERVER).initiate_upgrade_connection(headers, request.path)
    except (ProtocolError, h11.ProtocolError) as exc:  # h11's: e.g. two Host headers
        return str(exc)
    except ValueError as exc:  # wsproto decodes some headers as ASCII
        return f"a header is not ASCII ({exc})"
    return None


def plain(request: Any, status: int, message: str) -> bytes:
    """Set an error status and return a plain-text body."""
    phrase = http.RESPONSES.get(status, b"Upgrade Required" if status == 426 else b"Error")
    request.setResponseCode(status, phrase)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return f"{status} {phrase.decode()}: {message}\n".encode("utf-8")


class Endpoint(WebSocketResource):
    """The resource of one endpoint class of one applet: checks, ``accept()``, then
    Twisted's handshake; it is its own protocol factory. Built in a Django worker
    without touching the reactor; everything else runs on the reactor thread."""

    def __init__(self, applet: Any, socket_class: type[TwAppletWebSocket], reactor: Any = None) -> None:
        super().__init__(self)
        self.applet = applet
        self.socket_class = socket_class
        self.isLeaf = bool(socket_class.isLeaf)
        self._reactor = reactor
        self.url = f"/ws/{getattr(applet, 'id', '?')}/{str(socket_class.path).strip('/')}"
        self.links: dict[Link, None] = {}  # open connections
        self.pending = 0  # connections whose accept() is deciding
        self.retired = False  # set by close_all(): the applet was deactivated
        self._closer_registered = False

    @property
    def reactor(self) -> Any:
        return self._reactor if self._reactor is not None else _reactor()

    def __repr__(self) -> str:
        return f"<websocket endpoint {self.socket_class.__name__} at {self.url}>"

    def log(self) -> logging.Logger:
        return logging.getLogger(f"hanji.applet.{getattr(self.applet, 'id', '?')}")

    # -- the handshake request ----------------------------------------------------------

    # For Twisted's 405 answer to other methods: a handshake is a GET, nothing else.
    allowedMethods = (b"GET",)

    def render_HEAD(self, request: Any) -> bytes:
        """Refuse with 405 (``Allow: GET``); reactor thread.

        Twisted's default would answer HEAD with render_GET, upgrade included.
        """
        request.setHeader(b"allow", b"GET")
        plain(request, 405, f"{self.url} is a websocket endpoint; only GET (the handshake) is allowed.")
        return b""  # HEAD: the status and headers only

    def render_GET(self, request: Any) -> Any:
        """Check the request, ask ``accept()``, then upgrade."""
        cls = self.socket_class
        if not _is_upgrade(request):
            request.setHeader(b"upgrade", b"websocket")
            return plain(request, 426, f"{self.url} is a websocket endpoint; connect with a websocket "
                         f"client (in a page: hanji.connect('{self.applet.id}', '{cls.path}')).")
        problem = _handshake_problem(request)
        if problem is not None:
            return plain(request, 400, f"not a valid websocket handshake: {problem}")
        if self.retired:
            return self.gone(request)
        if not origin_allowed(request, cls.allowed_origins):
            origin = request.getHeader(b"origin").decode("latin-1")
            self.log().info("%s refused origin %s.", self.url, origin)
            return plain(request, 403, f"origin {origin} may not connect to {self.url}; "
                         f"add it to {cls.__name__}.allowed_origins to allow it.")
        if cls.max_connections is not None and len(self.links) + self.pending >= cls.max_connections:
            return plain(request, 403, f"{self.url} is full ({cls.max_connections} connections).")
        self.register_closer()
        use_args_dict(request)
        self.pending += 1
        try:
            socket = cls(self.applet)
            if getattr(socket, "applet", None) is None:
                socket.applet = self.applet  # a subclass __init__ that skipped super()
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
        if not isinstance(decision, defer.Deferred):
            self.pending -= 1
            return self.decided(request, socket, decision)
        request.notifyFinish().addErrback(lambda _: decision.cancel())
        decision.addCallbacks(
            lambda ok: self.decided(request, socket, ok),
            lambda failure: self.refused_by(request, failure),
        )
        decision.addBoth(self.answer_later, request)
        return NOT_DONE_YET

    def answer_later(self, body: Any, request: Any) -> None:
        """Write the answer of an asynchronous ``accept()``."""
        self.pending -= 1
        if body is NOT_DONE_YET or request._disconnected or request.finished:
            return
        request.write(body)
        request.finish()

    def decided(self, request: Any, socket: TwAppletWebSocket, ok: Any) -> Any:
        """Refuse (403) if ``accept()`` said False, else let Twisted upgrade."""
        if ok is False:
            return plain(request, 403, f"{type(socket).__name__}.accept() refused the connection.")
        if request._disconnected:
            return NOT_DONE_YET
        if self.retired:
            return self.gone(request)
        request._hanji_socket = socket
        result = WebSocketResource.render_GET(self, request)
        if result is NOT_DONE_YET:
            # Upgraded: the HTTP idle timeout no longer applies; pings do.
            set_timeout = getattr(request.channel, "setTimeout", None)
            if set_timeout is not None:
                set_timeout(None)
        return result

    def gone(self, request: Any) -> bytes:
        """Answer 503 for an endpoint whose applet was stopped (deactivated, or
        being replaced by a new version whose routes are not mounted yet)."""
        request.setHeader(b"retry-after", b"1")
        return plain(request, 503, f"applet '{self.applet.id}' was deactivated or is being "
                     "replaced; try again shortly.")

    def refused_by(self, request: Any, failure: Failure) -> bytes:
        """Answer an exception from ``accept()``: its status, or a reported 500."""
        if failure.check(defer.CancelledError):
            return b""  # the client went away while accept() was deciding
        status = status_of(failure.value)
        if status is not None:
            message = str(getattr(failure.value, "message", "") or failure.value or "refused")
            return plain(request, status, message)
        where = f"{self.socket_class.__name__}.accept() at {self.url}"
        text = failure.getTraceback()
        _errors.report_failure(str(self.applet.id), where, text, f"{where} failed")
        body = plain(request, 500, f"{where} failed; the traceback is in the server log "
                     f"(logger hanji.applet.{self.applet.id}).")
        return body + (b"\n" + text.encode("utf-8") if _threads.debug_enabled() else b"")

    def buildProtocol(self, request: Any) -> Link:
        """Return the link of the accepted connection (called by WebSocketResource)."""
        socket = request._hanji_socket
        link = Link(self, socket)
        socket._hanji_link = link
        return link

    # -- open connections ---------------------------------------------------------------

    def register_closer(self) -> None:
        """Have the applet call :meth:`close_all` at deactivation (once per activation)."""
        if self._closer_registered:
            return
        opened = getattr(self.applet, "_hanji_opened", None)
        if opened is not None:
            opened.record("closable", self.close_all)
            self._closer_registered = True

    def opened(self, link: Link) -> None:
        """Count ``link`` among the open connections; reactor thread."""
        self.links[link] = None
        _open.setdefault(type(link.socket), {})[link] = None

    def closed(self, link: Link) -> None:
        """Forget ``link``, which lost its connection; reactor thread."""
        self.links.pop(link, None)
        links = _open.get(type(link.socket))
        if links is not None:
            links.pop(link, None)
            if not links:
                del _open[type(link.socket)]

    def close_all(self, code: int = GOING_AWAY, reason: str = "going away") -> defer.Deferred[None]:
        """Close every connection (1001) and refuse new ones; fire when all are gone."""
        self.retired = True
        self._closer_registered = False
        links = list(self.links)
        for link in links:
            link.close_now(code, reason)
        waits = [link.lost for link in links if not link.lost.called]
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)
