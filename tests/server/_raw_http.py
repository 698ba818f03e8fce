"""Raw-socket HTTP for the limits tests: send exactly the bytes a test wants, read the
answer the server gives, and see when it closes the connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

WAIT = 20.0  # seconds: a hang guard, never a timed assertion


class Answer:
    """A parsed HTTP response: status, lower-cased headers, body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.headers} {self.body[:300]!r}>"


def connect(server: Any) -> socket.socket:
    """Open a TCP connection to ``server`` (a ServerProcess)."""
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_answer(sock: socket.socket, buffered: bytes = b"") -> tuple[Answer, bytes]:
    """Read one response (Content-Length framed, or up to EOF); return it and any
    bytes read past it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a whole response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Answer(status, headers, rest[:size]), rest[size:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, rest = _read_chunked(sock, rest)
        return Answer(status, headers, body), rest
    return Answer(status, headers, rest + read_to_eof(sock)), b""


def _read_chunked(sock: socket.socket, data: bytes) -> tuple[bytes, bytes]:
    """Decode a chunked body (no trailers); return it and the bytes past it."""
    body = b""
    while True:
        while b"\r\n" not in data:
            data += _recv(sock)
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(data) < size + 2:
            data += _recv(sock)
        body, data = body + data[:size], data[size + 2:]
        if size == 0:
            return body, data


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise AssertionError("connection closed in the middle of a chunked body")
    return chunk


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
    raise AssertionError(f"the server did not close the connection within {guard:g} s; got {data[:300]!r}")


def exchange(server: Any, data: bytes) -> Answer:
    """Send ``data`` on a new connection and return the one answer."""
    with connect(server) as sock:
        sock.sendall(data)
        answer, _ = read_answer(sock)
        return answer


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
    except AssertionError:
        return got, False
