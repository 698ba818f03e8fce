"""One raw HTTP exchange over a plain socket, for requests that urllib refuses to send.

``exchange(url, data)`` sends ``data`` as it is and reads back exactly one response
(status line, headers, body framed by Content-Length, chunked encoding or the end
of the connection), or ``None`` when the server closed without answering. A
``101 Switching Protocols`` answer ends the read after its headers.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from urllib.parse import urlsplit

HANG_GUARD = 15.0  # seconds without a byte before a request counts as hanging


class Hang(AssertionError):
    """The server neither answered nor closed within the hang guard."""


class Garbled(AssertionError):
    """The server answered something that is not an HTTP/1.x response."""


@dataclasses.dataclass
class Answer:
    """One parsed response."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw: bytes

    def header(self, name: bytes) -> bytes | None:
        """Return the last value of header ``name`` (case-insensitive), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found


class _Reader:
    """Buffered reads from a socket; ``None`` from a read means the peer closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.closed, self.raw = sock, b"", False, b""

    def _fill(self) -> bool:
        if self.closed:
            return False
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Hang(f"no byte from the server in {HANG_GUARD}s; so far: {self.raw[:300]!r}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        self.raw += chunk
        return True

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(marker, 1)
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise Garbled(f"connection closed {n - len(self.buf)} bytes short of the body: {self.raw[:300]!r}")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data


def _read_chunked(reader: _Reader) -> bytes:
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


def read_answer(sock: socket.socket, head_request: bool = False) -> Answer | None:
    """Read one response from ``sock``; None if the server closed without one."""
    reader = _Reader(sock)
    head = reader.until(b"\r\n\r\n")
    while head is not None and re.match(rb"HTTP/1\.\d 1(?!01)\d\d", head):
        head = reader.until(b"\r\n\r\n")  # an interim answer (100 Continue): read on
    if head is None:
        if reader.raw:
            raise Garbled(f"incomplete response head: {reader.raw[:300]!r}")
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise Garbled(f"not an HTTP status line: {lines[0][:200]!r}")
    status = int(parts[1])
    headers = []
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if not sep:
            raise Garbled(f"bad response header line {line[:200]!r}")
        headers.append((key.strip(), value.strip()))
    answer = Answer(status, parts[2] if len(parts) > 2 else b"", headers, b"", b"")
    if status == 101 or head_request or status in (204, 304):
        body = b""
    elif (answer.header(b"transfer-encoding") or b"").lower() == b"chunked":
        body = _read_chunked(reader)
    elif answer.header(b"content-length") is not None:
        body = reader.exactly(int(answer.header(b"content-length") or b"0"))
    else:
        body = reader.rest()
    answer.body = body
    answer.raw = reader.raw
    return answer


def exchange(url: str, data: bytes, head_request: bool = False) -> Answer | None:
    """Send ``data`` to the server at ``url`` and return its first response, or None
    if it closed the connection without answering. Raise :class:`Hang` or
    :class:`Garbled`."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=HANG_GUARD) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        return read_answer(sock, head_request)
