"""HTTP for the tests and the bench: one answer type, urllib requests, and a raw-socket client.

:func:`request` sends what urllib can send. The raw client sends exactly the bytes a
test wants (invalid UTF-8, odd framing, a body that never ends), reads the one answer
the server gives (framed by Content-Length, chunked encoding or the end of the
connection; interim 1xx answers skipped, a ``101`` ends after its headers) and sees
when the server closes the connection. Every wait is a hang guard (:data:`WAIT`),
never a timed assertion; a failure raises an ``AssertionError`` subclass.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from email.message import Message
from http.client import HTTPMessage
from typing import Protocol, Union
from urllib.parse import urlsplit

WAIT = 20.0  # seconds without a byte before an exchange counts as hanging


class HasUrl(Protocol):
    """Anything with the base URL of a server, such as a ServerProcess."""

    url: str


Target = Union[str, HasUrl]


class Hang(AssertionError):
    """The server neither answered nor closed within the hang guard."""


class Garbled(AssertionError):
    """The server answered something that is not a whole HTTP/1.x response."""


class NoAnswer(AssertionError):
    """The server closed the connection without answering."""


@dataclasses.dataclass(repr=False)
class Answer:
    """One HTTP response: status, headers (case-insensitive, repeated names kept), body;
    read off a socket, also its reason phrase and the raw bytes it came in."""

    status: int
    headers: Message  # an http.client.HTTPMessage: get(), get_all(), case-insensitive
    body: bytes
    reason: str = ""
    raw: bytes = b""

    @property
    def text(self) -> str:
        """Return the body decoded as UTF-8 (errors replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Answer {self.status} {dict(self.headers.items())} {self.body[:300]!r}>"


def request(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> Answer:
    """Send one request with urllib and return its answer, error statuses included."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.headers, resp.read(), resp.reason)
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers, err.read(), str(err.reason))


# -- the raw-socket client -------------------------------------------------------------------


def connect(target: Target, timeout: float = WAIT) -> socket.socket:
    """Open a TCP connection to ``target`` (a base URL, or a server with a ``url``)."""
    parts = urlsplit(target if isinstance(target, str) else target.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


class _Reader:
    """Buffered reads from a socket; a read returning False means the peer closed."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock, self.buf, self.closed, self.raw = sock, buffered, False, buffered

    def _fill(self) -> bool:
        """Read more bytes into the buffer; return False once the peer has closed."""
        if self.closed:
            return False
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Hang(f"no byte from the server in {self.sock.gettimeout()} s; so far: {self.raw[:300]!r}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        self.raw += chunk
        return True

    def until(self, marker: bytes) -> bytes | None:
        """Return the bytes before ``marker`` (consumed), or None if the peer closed first."""
        while marker not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(marker, 1)
        return head

    def exactly(self, n: int) -> bytes:
        """Return the next ``n`` bytes; raise Garbled if the peer closes first."""
        while len(self.buf) < n:
            if not self._fill():
                raise Garbled(f"connection closed {n - len(self.buf)} bytes short of the body: {self.raw[:300]!r}")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self) -> bytes:
        """Return everything up to the end of the connection."""
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data


def _read_chunked(reader: _Reader) -> bytes:
    """Decode a chunked body, trailers skipped."""
    body = b""
    while True:
        line = reader.until(b"\r\n")
        if line is None:
            raise Garbled(f"chunked body cut short: {reader.raw[:300]!r}")
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while reader.until(b"\r\n"):  # trailers, up to the empty line
                pass
            return body
        body += reader.exactly(size)
        reader.exactly(2)


def _parse_head(head: bytes) -> Answer:
    """Return the answer of a response head (status line and headers), body empty."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise Garbled(f"not an HTTP status line: {lines[0][:200]!r}")
    headers = HTTPMessage()
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if not sep:
            raise Garbled(f"bad response header line {line[:200]!r}")
        headers[key.strip().decode("latin-1")] = value.strip().decode("latin-1")
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    return Answer(int(parts[1]), headers, b"", reason)


def read_answer(sock: socket.socket, buffered: bytes = b"", head_request: bool = False) -> tuple[Answer, bytes]:
    """Read one response from ``sock`` (after the ``buffered`` bytes already read); return
    it and the bytes read past it. Raise NoAnswer, Garbled or Hang."""
    reader = _Reader(sock, buffered)
    head = reader.until(b"\r\n\r\n")
    while head is not None and re.match(rb"HTTP/1\.\d 1(?!01)\d\d", head):
        head = reader.until(b"\r\n\r\n")  # an interim answer (100 Continue): read on
    if head is None:
        if reader.raw:
            raise Garbled(f"incomplete response head: {reader.raw[:300]!r}")
        raise NoAnswer("the server closed the connection without answering")
    answer = _parse_head(head)
    length = answer.headers.get("content-length")
    if answer.status in (101, 204, 304) or head_request:
        pass
    elif (answer.headers.get("transfer-encoding") or "").lower() == "chunked":
        answer.body = _read_chunked(reader)
    elif length is not None:
        answer.body = reader.exactly(int(length or "0"))
    else:
        answer.body = reader.rest()
    answer.raw = reader.raw[:len(reader.raw) - len(reader.buf)]
    return answer, reader.buf


def read_to_eof(sock: socket.socket, guard: float = WAIT) -> bytes:
    """Read until the server closes the connection; fail if it does not within
    ``guard`` seconds (a hang guard)."""
    data = b""
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise Hang(f"the server did not close the connection within {guard:g} s; got {data[:300]!r}")


def exchange(target: Target, data: bytes, head_request: bool = False) -> Answer:
    """Send ``data`` on a new connection to ``target`` and return the first answer.
    Raise NoAnswer, Garbled or Hang."""
    with connect(target) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        try:
            return read_answer(sock, head_request=head_request)[0]
        except NoAnswer:
            raise NoAnswer(f"the server closed the connection without answering {data[:300]!r}") from None


def trickle(sock: socket.socket, pieces: Iterable[bytes], interval: float = 0.2,
            guard: float = 30.0) -> tuple[bytes, bool]:
    """Send ``pieces`` one every ``interval`` s until the server answers or closes,
    at most ``guard`` s; return what it sent and whether it closed the connection."""
    got = b""
    deadline = time.monotonic() + guard
    sock.settimeout(interval)
    for piece in pieces:
        if time.monotonic() > deadline:
            return got, False
        try:
            sock.sendall(piece)
        except OSError:
            break  # the server closed first; what it sent is still readable
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got, True
        if not chunk:
            return got, True
        got += chunk
        break
    try:
        return got + read_to_eof(sock, max(1.0, deadline - time.monotonic())), True
    except Hang:
        return got, False
