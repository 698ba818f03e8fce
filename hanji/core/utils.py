"""Helpers for applet authors: :class:`TwAppletResource` and :class:`TwAppletWebSocket`.

Both are built with the applet instance and mounted by the server, at
``/res/<applet_id>/<path>`` and ``/ws/<applet_id>/<path>``; their methods run on the
reactor thread. Importing this module loads nothing of the server or of Django and
installs no reactor: the server's modules are imported when a request is rendered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.python.reflect import prefixedMethodNames
from twisted.web.error import UnsupportedMethod
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from hanji import _threads
from hanji._exceptions import ServerNotRunning, WebSocketRefused
from hanji.core._context import current_bus, django_pool, open_websockets

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.web.server import Request

__all__ = ["NOT_DONE_YET", "TwAppletResource", "TwAppletWebSocket", "WebSocketRefused", "defer_to_django"]

MiB = 1 << 20

# Websocket close codes (RFC 6455, section 7.4.1).
NORMAL, GOING_AWAY, ABNORMAL, TOO_BIG, INTERNAL_ERROR, TRY_AGAIN_LATER = 1000, 1001, 1006, 1009, 1011, 1013


# The render contract (hanji.server.http.render), imported at the first render, not
# with this module: the applet model does not load the server at import time.
_contract: list[Any] = []


def _load_contract() -> Any:
    from hanji.server.http.render import render_with_contract

    _contract.append(render_with_contract)
    return render_with_contract


# The fan-out of a broadcast (hanji.server.websocket.fanout), imported at the first
# broadcast for the same reason.
_fanout: list[Any] = []


def _load_fanout() -> Any:
    from hanji.server.websocket.fanout import send_to_all

    _fanout.append(send_to_all)
    return send_to_all


class TwAppletResource(Resource):
    """A twisted.web resource of an applet, mounted at ``/res/<applet_id>/<path>``.

    Built with the applet instance (``self.applet``). ``path`` may contain ``/``;
    set ``isLeaf = True`` to also receive the URLs below it (the rest is in
    ``request.postpath``). Render methods run on the reactor thread and must not
    block; they may return bytes, str, a dict or list (JSON), a Deferred, a
    coroutine or ``NOT_DONE_YET``. ``request.args`` also accepts str keys.
    ``max_body`` (bytes) replaces the server's body limit (``--max-body``) for
    this resource: a larger body is refused with 413 before it is read.
    """

    path: ClassVar[str] = ""
    content_type: ClassVar[str | None] = None
    max_body: ClassVar[int | None] = None

    def __init__(self, applet: Any = None) -> None:
        super().__init__()
        self.applet = applet

    def render(self, request: Request) -> Any:
        """Dispatch to ``render_<METHOD>`` under Hanji's render contract; reactor thread."""
        contract = _contract[0] if _contract else _load_contract()
        method = request.method.decode("ascii", "replace")
        if method == "HEAD" and type(self).render_HEAD is Resource.render_HEAD:
            handler = getattr(self, "render_GET", None)  # Twisted's HEAD: GET without the body
        else:
            handler = getattr(self, "render_" + method, None)
        if handler is None:
            raise UnsupportedMethod(self._allowed_methods())  # 405 with the Allow header
        return contract(self, request, handler)

    def _allowed_methods(self) -> list[bytes]:
        """Return the methods this resource renders (HEAD only if it has GET)."""
        explicit = getattr(self, "allowedMethods", None)
        if explicit is not None:
            return list(explicit)
        names = {n for n in prefixedMethodNames(type(self), "render_") if n.isupper()}
        if "GET" not in names:
            names.discard("HEAD")
        return sorted(n.encode("ascii") for n in names)


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
        max_send_buffer: unsent bytes a connection may hold. Past it ``send()``
            returns False (drop or coalesce) and the peer's own messages are not
            read until it drained; once as much again waits, the connection is
            closed with 1013 (Try Again Later: it reads too slowly).
        ping_interval: seconds of silence before the server pings (None: never).
        ping_timeout: seconds to wait for a pong before the peer is deemed dead.
        close_timeout: seconds to wait for the peer's close frame after closing.
        allowed_origins: other origins allowed to connect, such as
            ``"https://app.example.com"``, ``"example.com:8080"`` or ``"*"``; the
            server's own origin and clients sending no Origin are always allowed.
        max_connections: open connections allowed at once (None: no limit);
            more are refused with HTTP 403.
        isLeaf: True to also serve the URLs below ``path`` (the rest is in
            ``self.request.postpath``), as for TwAppletResource.
        needs_user: resolve the Django user of the handshake (from Django's
            session cookie, in the Django pool) into ``self.user`` before ``accept()``.
        login_required: as ``needs_user``, and refuse anonymous connections (403).
    """

    path: ClassVar[str] = ""
    max_message_size: ClassVar[int] = MiB
    max_send_buffer: ClassVar[int] = MiB
    ping_interval: ClassVar[float | None] = 20.0
    ping_timeout: ClassVar[float] = 20.0
    close_timeout: ClassVar[float] = 5.0
    allowed_origins: ClassVar[Sequence[str]] = ()
    max_connections: ClassVar[int | None] = None
    isLeaf: ClassVar[bool] = False
    needs_user: ClassVar[bool] = False
    login_required: ClassVar[bool] = False

    # The Django user of the handshake (needs_user, login_required), else None.
    user: Any = None

    # Set per connection by the server (also here, for a subclass __init__ that
    # skips super()): the handshake request and the connection's link
    # (hanji.server.websocket.link.Link).
    request: Any = None
    _hanji_link: Any = None

    def __init__(self, applet: Any) -> None:
        self.applet = applet

    # -- hooks (reactor thread) -----------------------------------------------

    def accept(self, request: Request) -> Any:
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

    def send(self, message: str | bytes | dict[str, Any] | list[Any]) -> bool:
        """Send a message (str: text, bytes: binary, dict/list: JSON text); any thread.

        Return whether the connection is still writable: False once it is closing,
        or while its unsent output is over ``max_send_buffer`` (the peer reads
        slowly: drop or coalesce what you send it). Off the reactor thread the
        message is handed to the reactor and the answer is the state before it.
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
            return bool(link.send_now(data))
        link.reactor.callFromThread(link.send_now, data)
        return bool(link.is_open and not link.closing and not link.congested)

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
        """Whether the connection is open and not closing; reactor thread."""
        link = self._hanji_link
        return link is not None and link.is_open and not link.closing

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closing, else None; reactor thread."""
        return self._hanji_link.code if self._hanji_link is not None else None

    @property
    def logger(self) -> logging.Logger:
        """Return the applet's logger, ``hanji.applet.<id>``."""
        return logging.getLogger(f"hanji.applet.{getattr(self.applet, 'id', '?')}")

    @classmethod
    def connections(cls) -> list[TwAppletWebSocket]:
        """Return the open connections of this endpoint class; reactor thread.

        Raise HanjiThreadError on another thread in debug mode.
        """
        _threads.assert_reactor_thread(f"{cls.__name__}.connections()")
        return [link.socket for link in open_websockets.get(cls, ())]

    @classmethod
    def broadcast(cls, message: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Send ``message`` to every open connection of this endpoint, in this
        process and in every process sharing the server's bus (``--workers``,
        ``--bus redis://…``; see :mod:`hanji.server.bus`); any thread.

        Every connection gets each broadcast of the endpoint once, all in the same
        order. This returns before the sending is done: off the reactor thread the
        call is handed to the reactor (``reactor.callFromThread``), and with a bus
        across processes the message is delivered when the bus hands it back.
        """
        data = _encode(message)
        if _threads.in_reactor_thread():
            cls._publish_now(data)
        else:
            from twisted.internet import reactor

            reactor.callFromThread(cls._publish_now, data)  # type: ignore[attr-defined]

    @classmethod
    def _publish_now(cls, data: str | bytes) -> None:
        """Hand ``data`` to the running server's bus, or send it to this process's
        connections when no server runs; reactor thread."""
        bus = current_bus()
        if bus is None:
            cls._broadcast_now(data)
        else:
            bus.publish_websocket(cls, data)

    @classmethod
    def _broadcast_now(cls, data: str | bytes) -> None:
        """Send ``data`` to every open connection of ``cls`` in this process, each
        write starting as the loop goes (hanji.server.websocket.fanout); reactor thread."""
        links = open_websockets.get(cls)
        if links:
            send_to_all = _fanout[0] if _fanout else _load_fanout()
            send_to_all(list(links), data)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "not open"
        return f"<{type(self).__name__} /ws/{getattr(self.applet, 'id', '?')}/{self.path} {state}>"


def defer_to_django(f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Run blocking Django code (ORM, templates) in the Django pool and return a
    Deferred of its result; call it on the reactor thread, e.g. from a render method.

    Like every Django pool job it runs between two ``close_old_connections()``
    calls, as a Django request does, so it never gets or leaves a stale connection.
    If the pool's queue is full (``--django-queue``) the Deferred fails at once with
    :class:`~hanji._exceptions.DjangoPoolFull`, which the render contract answers
    with 503 and Retry-After. Raise ServerNotRunning without a running server.
    """
    from twisted.internet import defer
    from twisted.internet.threads import deferToThreadPool

    _threads.assert_reactor_thread("defer_to_django()")
    running = django_pool()
    if running is None:
        raise ServerNotRunning("defer_to_django() needs a running Hanji server: start it "
                               "(hanji serve, or %load_ext hanji in a notebook) first.")
    reactor, pool = running
    if pool.full():
        name = getattr(f, "__qualname__", None) or repr(f)
        return defer.fail(pool.overloaded(f"defer_to_django({name})"))
    return deferToThreadPool(reactor, pool, f, *args, **kwargs)
