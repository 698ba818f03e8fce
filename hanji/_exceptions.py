"""Hanji's exceptions, in one place.

    HanjiError
    ├── AppletError              (carries ``applet_id``)
    │   ├── AppletNotFound       an id that no active applet has
    │   ├── AppletImportError    an applet package that failed to import
    │   └── AppletActivationError  ``on_activate`` raised
    │       └── ActivationTimeout  ``on_activate`` overran the activation timeout
    ├── MissingArgument          ``request.args[name]`` without that argument (also a KeyError; a 400)
    ├── HanjiThreadError         a function called on the wrong thread (debug mode);
    │                            ``WrongThreadError`` is the same class, its older name
    ├── ServerNotRunning         the server is not started (or was stopped)
    ├── DjangoPoolFull           the Django pool's queue is full (a 503 with Retry-After)
    ├── WebSocketRefused         raised in ``accept()``: refuse with an HTTP status
    ├── WebSocketClosed          a notebook websocket client is closed
    ├── WebSocketHandshakeError  the server refused a notebook websocket client
    └── HTTPStatusError          a notebook ``Response`` had a 4xx/5xx status

The notebook's ``NotLoaded`` and ``UnknownApplet`` (:mod:`hanji.notebook._usage`) are
``ServerNotRunning`` and ``AppletNotFound`` that IPython shows as one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class HanjiError(Exception):
    """Base class of every error Hanji raises on purpose."""


class AppletError(HanjiError):
    """An error about one applet, named by ``applet_id``."""

    def __init__(self, applet_id: str, message: str) -> None:
        super().__init__(message)
        self.applet_id = applet_id


class AppletNotFound(AppletError):
    """No active applet has this id."""

    def __init__(self, applet_id: str, known: Iterable[str] = ()) -> None:
        known = sorted(known)
        hint = ""
        close = difflib.get_close_matches(applet_id, known, n=1)
        if close:
            hint = f" Did you mean '{close[0]}'?"
        listing = ", ".join(known) if known else "none"
        super().__init__(
            applet_id,
            f"No active applet '{applet_id}'.{hint} Active applets: {listing}.",
        )


class AppletImportError(AppletError):
    """An applet package raised while it was imported."""


class AppletActivationError(AppletError):
    """An applet's ``on_activate`` raised."""


class ActivationTimeout(AppletActivationError):
    """An applet's ``on_activate`` did not return within the activation timeout."""


class MissingArgument(HanjiError, KeyError):
    """A request lacks an argument a resource reads; the render contract answers 400."""

    def __init__(self, name: Any) -> None:
        super().__init__(name)
        self.name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)

    def __str__(self) -> str:
        return f"missing request argument {self.name!r}"


class HanjiThreadError(HanjiError):
    """A function was called on a thread it must not run on; the message says what
    to use instead (raised in debug mode only)."""


WrongThreadError = HanjiThreadError  # the older name, kept for existing code


class ServerNotRunning(HanjiError):
    """The Hanji server is not running: start it first."""


class DjangoPoolFull(HanjiError):
    """The Django pool's queue is full: the job was not run; retry after ``retry_after`` s."""

    status = 503

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WebSocketRefused(HanjiError):
    """Raise in ``TwAppletWebSocket.accept()`` to refuse with an HTTP status (default 403)."""

    def __init__(self, status: int = 403, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message


class WebSocketClosed(HanjiError):
    """The websocket is closed: nothing more can be sent, and no message is left."""


class WebSocketHandshakeError(HanjiError):
    """The server refused the websocket (``status`` and ``body`` say why)."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"{url} refused the connection: HTTP {status}. {body.strip()[:300]}")
        self.status, self.body = status, body


class HTTPStatusError(HanjiError):
    """A response had a 4xx or 5xx status (raised by ``Response.raise_for_status()``)."""

    def __init__(self, response: Any) -> None:
        super().__init__(
            f"{response.method} {response.path} answered {response.status} {response.reason}: "
            f"{_excerpt(response.text)}"
        )
        self.response = response


def _excerpt(text: str, limit: int = 300) -> str:
    """Return ``text`` up to ``limit`` characters, cut at a word boundary with the
    length of the rest (the whole body is on ``response.text``)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(None, 1)[0] if " " in text[:limit] else text[:limit]
    return f"{cut}… ({len(text) - len(cut)} more characters in .response.text)"
