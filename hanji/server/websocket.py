"""Websocket endpoints of applets: :class:`TwAppletWebSocket` (reactor thread).

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
  clean HTTP status instead of a 500 (``_ws_endpoint``);
- a message size limit (close code 1009) enforced while the message arrives, the
  close code of every connection given to ``on_close(code)``, a proper closing
  handshake, idle pings and dead peers dropped (``_ws_link``);
- ``broadcast()`` and ``send()`` callable from any thread (here);
- connections closed (1001) when the applet is deactivated or the server stops.

Invalid UTF-8 in a text message is caught by wsproto, which closes with 1007.

Modules: this one is the public surface; ``_ws_endpoint`` is the HTTP side (the
mounted resource), ``_ws_link`` the wire side of one connection. Both run on the
reactor thread only.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from twisted.web.resource import IResource

from hanji import _threads
from hanji._exceptions import WebSocketRefused

if TYPE_CHECKING:
    from hanji.server._ws_link import Link

__all__ = ["TwAppletWebSocket", "WebSocketRefused", "websocket_resource"]

MiB = 1 << 20

# Close codes (RFC 6455, section 7.4.1).
NORMAL, GOING_AWAY, ABNORMAL, TOO_BIG, INTERNAL_ERROR = 1000, 1001, 1006, 1009, 1011

# Open connections by endpoint class, for broadcast(); reactor thread only.
_open: dict[type, dict[Link, None]] = {}


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
        isLeaf: True to also serve the URLs below ``path`` (the rest is in
            ``self.request.postpath``), as for TwAppletResource.
    """

    path: ClassVar[str] = ""
    max_message_size: ClassVar[int] = MiB
    ping_interval: ClassVar[float | None] = 20.0
    ping_timeout: ClassVar[float] = 20.0
    close_timeout: ClassVar[float] = 5.0
    allowed_origins: ClassVar[Sequence[str]] = ()
    max_connections: ClassVar[int | None] = None
    isLeaf: ClassVar[bool] = False

    # Set per connection by Hanji (also here, for a subclass __init__ that skips super()).
    request: Any = None
    _hanji_link: Link | None = None

    def __init__(self, applet: Any) -> None:
        self.applet = applet

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

        Raise WrongThreadError on another thread in debug mode.
        """
        _threads.assert_reactor_thread(f"{cls.__name__}.connections()")
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
    from hanji.server._ws_endpoint import Endpoint

    return cast(IResource, Endpoint(applet, ws_class, reactor))

