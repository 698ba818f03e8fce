"""Plain-text answers: the one way Hanji words an HTTP refusal or error; reactor thread.

Every answer Hanji writes itself (404 for an unknown route, 403 from the access and
CSRF checks, 405, 413/414/431/408 from the limits, 426/400/403/503 from websocket
endpoints, 503 for a full Django pool, 400/500 from the render contract) has the
same shape: ``<status> <phrase>: <what happened and what to do>``, as UTF-8 text
with ``Cache-Control: no-store``, so a browser, ``curl`` and the notebook client
all show the reason.
"""

from __future__ import annotations



from twisted.web import http, resource
from twisted.web.server import Request

# Phrases Twisted lacks or words the old way (RFC 9110 names).
_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}


def phrase(status: int) -> str:
    """Return the reason phrase of ``status`` (``"Error"`` for an unknown one)."""
    return _PHRASES.get(status) or http.RESPONSES.get(status, b"Error").decode("ascii")


def text(status: int, message: str) -> bytes:
    """Return the body of an answer: ``<status> <phrase>: <message>`` and a newline."""
    return f"{status} {phrase(status)}: {message.rstrip()}\n".encode("utf-8")


def answer(request: Request, status: int, message: str,
           headers: dict[bytes, bytes] | None = None) -> bytes:
    """Set ``status``, a plain-text type and ``headers`` on ``request``; return the
    body for ``message``. Reactor thread."""
    request.setResponseCode(status, phrase(status).encode("ascii"))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    for name, value in (headers or {}).items():
        request.setHeader(name, value)
    return text(status, message)


def raw_answer(status: int, message: str) -> bytes:
    """Return a whole HTTP/1.1 response that closes the connection, for a channel
    that refuses a request before twisted.web built one (the limits)."""
    body = text(status, message)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nconnection: close\r\n\r\n"
        % (status, phrase(status).encode("ascii"), len(body))
    ) + body


class Answer(resource.Resource):
    """A resource that answers every method with one plain-text status; reactor
    thread. Routing returns it for a 404 or a 403."""

    isLeaf = True

    def __init__(self, status: int, message: str, headers: dict[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.status = status
        self.message = message
        self.headers = headers

    def render(self, request: Request) -> bytes:
        return answer(request, self.status, self.message, self.headers)

    def __repr__(self) -> str:
        return f"<Answer {self.status}: {self.message[:60]!r}>"


def not_found(message: str) -> Answer:
    """Return a 404 naming what was not found and what exists."""
    return Answer(404, message)


def forbidden(message: str) -> Answer:
    """Return a 403 saying why and how to get in."""
    return Answer(403, message)
