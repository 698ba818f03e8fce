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
from typing import Any

import h11
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import WebSocketResource
from wsproto import ConnectionType
from wsproto.handshake import H11Handshake
from wsproto.utilities import ProtocolError

from hanji import _threads
from hanji import _errorlog as _errors
from hanji._logfile import short
from hanji.server.http import answers
from hanji.server.http.limits import refusals
from hanji.server.security.origin import origin_allowed
from hanji.server.websocket.link import Link
from hanji.server.http.render import use_args_dict
from hanji.core._context import run_as
from hanji.core._context import open_websockets
from hanji.core.utils import GOING_AWAY, TwAppletWebSocket, WebSocketRefused


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
        if self._reactor is None:  # built without one (a test): the global reactor
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

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
        answers.answer(request, 405, f"{self.url} is a websocket endpoint; only GET (the handshake) is allowed.")
        return b""  # HEAD: the status and headers only

    def render_GET(self, request: Any) -> Any:
        """Check the request, ask ``accept()``, then upgrade."""
        cls = self.socket_class
        if not _is_upgrade(request):
            request.setHeader(b"upgrade", b"websocket")
            return answers.answer(request, 426, f"{self.url} is a websocket endpoint; connect with a websocket "
                         f"client (in a page: hanji.connect('{self.applet.id}', '{cls.path}')).")
        problem = _handshake_problem(request)
        if problem is not None:
            return answers.answer(request, 400, f"not a valid websocket handshake: {problem}")
        if self.retired:
            return self.gone(request)
        if not origin_allowed(request, cls.allowed_origins):
            origin = request.getHeader(b"origin").decode("latin-1")
            refusals.refused(403, "%s refused origin %s.", self.url, short(origin))
            return answers.answer(request, 403, f"origin {short(origin)} may not connect to {self.url}; "
                         f"add it to {cls.__name__}.allowed_origins to allow it.")
        if cls.max_connections is not None and len(self.links) + self.pending >= cls.max_connections:
            return answers.answer(request, 403, f"{self.url} is full ({cls.max_connections} connections).")
        self.register_closer()
        use_args_dict(request)
        self.pending += 1
        try:
            socket = cls(self.applet)
            if getattr(socket, "applet", None) is None:
                socket.applet = self.applet  # a subclass __init__ that skipped super()
            socket.request = request

            def accept() -> Any:
                result = socket.accept(request)
                if inspect.iscoroutine(result):
                    result = defer.ensureDeferred(result)
                return result

            def ask() -> Any:
                if not (cls.needs_user or cls.login_required):
                    return accept()
                from hanji.core.auth import django_user

                def with_user(user: Any) -> Any:
                    socket.user = user
                    if cls.login_required and not user.is_authenticated:
                        raise WebSocketRefused(403, f"{self.url} needs a logged-in Django user; log in "
                                                    "(the admin's login page, /admin/login/, does) first.")
                    return run_as(self.applet, accept)

                return django_user(request).addCallback(with_user)

            decision = run_as(self.applet, ask)
        except Exception:
            self.pending -= 1
            return self.refused_by(request, Failure())
        if not isinstance(decision, defer.Deferred):
            self.pending -= 1
            return self.decided(request, socket, decision)
        gone: list[bool] = []

        def on_gone(_: Failure) -> None:
            gone.append(True)
            decision.cancel()

        # Fires (with an error) if the client leaves while accept() decides.
        request.notifyFinish().addErrback(on_gone)
        decision.addCallbacks(
            lambda ok: self.decided(request, socket, ok, gone=bool(gone)),
            lambda failure: self.refused_by(request, failure),
        )
        decision.addBoth(self.answer_later, request, gone)
        return NOT_DONE_YET

    def answer_later(self, body: Any, request: Any, gone: list[bool]) -> None:
        """Write the answer of an asynchronous ``accept()`` unless the client left."""
        self.pending -= 1
        if body is NOT_DONE_YET or gone or request.finished:
            return
        request.write(body)
        request.finish()

    def decided(self, request: Any, socket: TwAppletWebSocket, ok: Any, gone: bool = False) -> Any:
        """Refuse (403) if ``accept()`` said False, else let Twisted upgrade (not
        if the client already left: ``gone``)."""
        if ok is False:
            return answers.answer(request, 403, f"{type(socket).__name__}.accept() refused the connection.")
        if gone:
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
        return answers.answer(request, 503, f"applet '{self.applet.id}' was deactivated or is being "
                     "replaced; try again shortly.")

    def refused_by(self, request: Any, failure: Failure) -> bytes:
        """Answer an exception from ``accept()``: its status, or a reported 500."""
        if failure.check(defer.CancelledError):
            return b""  # the client went away while accept() was deciding
        status = status_of(failure.value)
        if status is not None:
            message = str(getattr(failure.value, "message", "") or failure.value or "refused")
            return answers.answer(request, status, message)
        where = f"{self.socket_class.__name__}.accept() at {self.url}"
        text = failure.getTraceback()
        _errors.report_failure(str(self.applet.id), where, text, f"{where} failed")
        body = answers.answer(request, 500, f"{where} failed; the traceback is in the server log "
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
        open_websockets.setdefault(type(link.socket), {})[link] = None

    def closed(self, link: Link) -> None:
        """Forget ``link``, which lost its connection; reactor thread."""
        self.links.pop(link, None)
        links = open_websockets.get(type(link.socket))
        if links is not None:
            links.pop(link, None)
            if not links:
                del open_websockets[type(link.socket)]

    def close_all(self, code: int = GOING_AWAY, reason: str = "going away") -> defer.Deferred[None]:
        """Close every connection (1001) and refuse new ones; fire when all are gone."""
        self.retired = True
        self._closer_registered = False
        links = list(self.links)
        for link in links:
            link.close_now(code, reason)
        waits = [link.lost for link in links if not link.lost.called]
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)
