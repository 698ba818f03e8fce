"""Talk to an applet's websocket endpoint from a notebook cell: ``hanji.ws()``.

The connection is a plain client (the ``websockets`` package's threaded client), not
a reactor protocol: a cell may block on it without stalling the reactor, and it works
the same against a server in this kernel or elsewhere. A reader thread
(``HanjiWs-<applet>/<path>``) takes every message as it arrives, keeps it for
:meth:`WebSocketClient.receive`, appends it to :attr:`WebSocketClient.messages` and
hands it to the callbacks given to :meth:`WebSocketClient.on_message`::

    chat = hanji.ws("chat", "room", json=True)
    chat.send({"name": "nb", "text": "hello"})
    chat.receive(timeout=5)            # or: await chat.areceive(timeout=5)
    chat.on_message(print)             # runs on the reader thread
    chat.close()

Blocking methods and their awaitable twins share one implementation: ``send`` /
``asend``, ``receive`` / ``areceive``, ``close`` / ``aclose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as _json
import logging
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

from hanji._exceptions import WebSocketClosed, WebSocketHandshakeError, HanjiThreadError
from hanji import _config
from hanji._threads import in_reactor_thread

__all__ = ["WebSocketClient", "WebSocketClosed", "WebSocketHandshakeError", "ws"]

log = logging.getLogger("hanji.notebook")

_UNSET: Any = object()

Message = Any  # str (text), bytes (binary), or a decoded JSON value with json=True


def _kernel_server() -> Any:
    """Return the Hanji server of this kernel (``%load_ext hanji``), or None."""
    session = sys.modules.get("hanji.notebook.session")  # no server if never imported
    return session.get_session().server if session is not None else None


def default_base_url() -> str:
    """Return the URL of the Hanji server in this process if one listens, else
    ``$HANJI_URL``, else ``http://127.0.0.1:8899``; any thread."""
    server = _kernel_server()
    if server is not None and getattr(server, "listening_port", None) is not None:
        return str(server.url)
    return _config.client_url()


def default_token(base_url: str | None = None) -> str | None:
    """Return the access token for ``base_url``: that of the Hanji server in this
    process when the URL is its own (or not given), else ``$HANJI_TOKEN``; any thread."""
    server = _kernel_server()
    if server is not None and getattr(server, "listening_port", None) is not None:
        own = str(server.url)
        given = (base_url or own).rstrip("/")
        if given.split("://", 1)[-1] == own.split("://", 1)[-1]:
            return getattr(server, "token", None)
    return _config.token()


def ws_url(applet_id: str, path: str = "", base_url: str | None = None) -> str:
    """Return ``ws(s)://host:port/ws/<applet_id>/<path>`` for ``base_url`` (http or ws)."""
    base = (base_url or default_base_url()).rstrip("/")
    scheme, rest = base.split("://", 1) if "://" in base else ("http", base)
    scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    from hanji.notebook.client import quote_path

    return f"{scheme}://{rest}/ws/{quote(applet_id, safe='')}/{quote_path(path.lstrip('/'))}"


class WebSocketClient:
    """An open websocket to ``/ws/<applet_id>/<path>``; see :func:`ws`.

    Thread-safe: send and receive from any thread (except the reactor's).
    ``messages`` holds the last ``history`` messages received, in order.
    """

    def __init__(self, url: str, conn: Any, stack: contextlib.ExitStack, *,
                 timeout: float | None, json: bool, history: int) -> None:
        self.url = url
        self.path = urlsplit(url).path
        self.timeout = timeout
        self._conn = conn
        self._stack = stack
        self._json = json
        self._cond = threading.Condition()
        self._unread: deque[Message] = deque(maxlen=history)
        self._history: deque[Message] = deque(maxlen=history)
        self._callbacks: list[Callable[[Message], Any]] = []
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name=f"HanjiWs-{self.path[4:]}", daemon=True)
        self._reader.start()

    # -- state -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (by either side)."""
        return self._closed

    @property
    def close_code(self) -> int | None:
        """The close code the server sent (None while open)."""
        return getattr(self._conn, "close_code", None) if self._closed else None

    @property
    def close_reason(self) -> str | None:
        """The close reason the server sent (None while open)."""
        return getattr(self._conn, "close_reason", None) if self._closed else None

    @property
    def messages(self) -> list[Message]:
        """The messages received so far (the last ``history`` of them), oldest first."""
        with self._cond:
            return list(self._history)

    def __repr__(self) -> str:
        state = f"closed ({self.close_code})" if self._closed else "open"
        return f"<hanji.ws {self.path} {state}, {len(self._history)} received>"

    # -- observing -----------------------------------------------------------------------

    def on_message(self, callback: Callable[[Message], Any]) -> Callable[[Message], Any]:
        """Call ``callback(message)`` for every message from now on, on the reader
        thread; return it (usable as a decorator). Its exceptions are logged."""
        with self._cond:
            self._callbacks.append(callback)
        return callback

    def _read_loop(self) -> None:
        """Take messages as they arrive; reader thread."""
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self._conn:
                self._arrived(message)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("hanji.ws %s: the reader stopped", self.path)
        finally:
            with self._cond:
                self._closed = True
                self._wake()

    def _arrived(self, message: Message) -> None:
        if self._json and isinstance(message, str):
            with contextlib.suppress(ValueError):
                message = _json.loads(message)
        with self._cond:
            self._unread.append(message)
            self._history.append(message)
            callbacks = list(self._callbacks)
            self._wake()
        for callback in callbacks:
            try:
                callback(message)
            except Exception:
                log.exception("hanji.ws %s: on_message callback %r failed", self.path, callback)

    def _wake(self) -> None:
        """Wake blocking and awaiting receivers; hold ``self._cond``."""
        self._cond.notify_all()
        for loop, future in self._async_waiters:
            loop.call_soon_threadsafe(_resolve, future)
        self._async_waiters.clear()

    # -- receiving ------------------------------------------------------------------------

    def _take(self) -> tuple[bool, Message]:
        """Return ``(True, message)`` for the next unread message, ``(False, None)``
        if none yet; raise WebSocketClosed if none will come. Hold ``self._cond``."""
        if self._unread:
            return True, self._unread.popleft()
        if self._closed:
            raise WebSocketClosed(f"{self.path} is closed (code {self.close_code}); no message is left.")
        return False, None

    def _deadline(self, timeout: float | None) -> float | None:
        timeout = self.timeout if timeout is _UNSET else timeout
        return None if timeout is None else time.monotonic() + timeout

    def _timed_out(self, timeout: Any) -> TimeoutError:
        seconds = self.timeout if timeout is _UNSET else timeout
        return TimeoutError(f"No message from {self.path} within {seconds} s.")

    def receive(self, timeout: float | None = _UNSET) -> Message:
        """Return the next message, waiting up to ``timeout`` seconds (default: the
        connection's; None waits forever). Raise TimeoutError, or WebSocketClosed
        once the connection is closed and every message was received. Blocks: call
        it from a cell, not the reactor thread."""
        deadline = self._deadline(timeout)
        with self._cond:
            while True:
                found, message = self._take()
                if found:
                    return message
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise self._timed_out(timeout)
                self._cond.wait(left)

    async def areceive(self, timeout: float | None = _UNSET) -> Message:
        """Awaitable twin of :meth:`receive`."""
        deadline = self._deadline(timeout)
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                found, message = self._take()
                if found:
                    return message
                future: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, future))
            left = None if deadline is None else deadline - time.monotonic()
            try:
                if left is not None and left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(future, left)
            except asyncio.TimeoutError:
                raise self._timed_out(timeout) from None
            finally:
                with self._cond:
                    if (loop, future) in self._async_waiters:
                        self._async_waiters.remove((loop, future))

    def __iter__(self) -> Iterator[Message]:
        """Yield messages as they come until the connection closes."""
        while True:
            try:
                yield self.receive(timeout=None)
            except WebSocketClosed:
                return

    # -- sending and closing ------------------------------------------------------------------

    def send(self, message: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Send a message: str as text, bytes as binary, dict or list as JSON text.
        Raise WebSocketClosed if the connection is closed."""
        from websockets.exceptions import ConnectionClosed

        if isinstance(message, (dict, list)):
            message = _json.dumps(message)
        elif not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"hanji.ws: send str, bytes, or a dict/list (as JSON), not {type(message).__name__}.")
        try:
            self._conn.send(message)
        except ConnectionClosed as exc:
            raise WebSocketClosed(f"{self.path} is closed ({exc}); reconnect with hanji.ws().") from None

    async def asend(self, message: str | bytes | dict[str, Any] | list[Any]) -> None:
        """Awaitable twin of :meth:`send`."""
        await asyncio.to_thread(self.send, message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (closing handshake) and stop the reader; idempotent."""
        self._conn.close(code, reason)
        self._stack.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=10)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Awaitable twin of :meth:`close`."""
        await asyncio.to_thread(self.close, code, reason)

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> WebSocketClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def ws(applet_id: str, path: str = "", *, base_url: str | None = None, timeout: float | None = 10,
       json: bool = False, headers: dict[str, str] | None = None, origin: str | None = None,
       history: int = 1000) -> WebSocketClient:
    """Open a websocket to ``/ws/<applet_id>/<path>`` and return the connection.

    ``base_url`` defaults to the Hanji server of this kernel, else ``$HANJI_URL``,
    else ``http://127.0.0.1:8899``; the access token (of this kernel's server, else
    ``$HANJI_TOKEN``) is sent as ``X-Hanji-Token``. ``timeout`` bounds the opening handshake and is
    the default timeout of :meth:`WebSocketClient.receive`. With ``json=True`` text
    messages are decoded as JSON (text that is not JSON stays a str). ``path`` may
    carry a query string. Raise WebSocketHandshakeError if the server refuses the
    connection, HanjiThreadError on the reactor thread (it would wait for itself).
    """
    if in_reactor_thread():
        raise HanjiThreadError(
            "hanji.ws() blocks and must not run on the reactor thread; call it from a "
            "cell or a worker thread."
        )
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = ws_url(applet_id, path, base_url)
    headers = dict(headers or {})
    token = default_token(base_url)
    if token and not any(k.lower() == "x-hanji-token" for k in headers):
        headers["X-Hanji-Token"] = token
    stack = contextlib.ExitStack()
    try:
        conn = stack.enter_context(connect(
            url, open_timeout=timeout, close_timeout=timeout, compression=None, max_size=None,
            additional_headers=headers, origin=origin,  # type: ignore[arg-type]
        ))
    except InvalidStatus as exc:
        response = exc.response
        body = bytes(response.body or b"").decode("utf-8", "replace")
        raise WebSocketHandshakeError(url, response.status_code, body) from None
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"hanji.ws could not reach {url}: {exc}. Is the server running "
            "(%load_ext hanji, or `hanji serve`)? Pass base_url= or set HANJI_URL."
        ) from exc
    return WebSocketClient(url, conn, stack, timeout=timeout, json=json, history=history)
