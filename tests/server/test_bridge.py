"""The WSGI bridge to Django against a real server: streamed answers (a
StreamingHttpResponse, a FileResponse) follow a slow reader with bounded server
memory and stop when the client leaves; a large plain answer arrives whole."""

from __future__ import annotations

import hashlib
import json
import socket
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from support.http import connect
from support.polling import wait_until
from support.server import ServerProcess

WAIT = 30.0  # a hang guard, never a timed assertion
MiB = 1 << 20
STREAM_CHUNK = 64 * 1024
STREAM_MB = 64
FILE_MB = 48

_APPLET_INIT = '''
"""Test applet for the WSGI bridge (tests/server/test_bridge.py): Django views that
stream, serve a file and answer a large body; what they did, by tag."""

from hanji.core import applet as _applet

# What each tagged answer did; written by Django workers, read by the state view.
STATE: dict = {}

applet = _applet.Applet()
web = _applet.WebUI()
'''

_APPLET_URLS = '''
"""Django views of the bridge test applet, under /applets/bridgetest/."""

import io
import os

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from . import STATE


def stream(request):
    """?mb=N&tag=T: N MiB in fresh 64 kB chunks (chunk i is bytes i % 256), counted."""
    tag = request.GET["tag"]
    count = int(request.GET.get("mb", "1")) * 16
    state = STATE[tag] = {"chunks": 0, "closed": False}

    def chunks():
        try:
            for i in range(count):
                state["chunks"] += 1
                yield bytes([i % 256]) * 65536
        finally:
            state["closed"] = True

    return StreamingHttpResponse(chunks(), content_type="application/octet-stream")


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it and notes when it is closed."""

    def __init__(self, name, state):
        super().__init__(name, "rb")
        self.state = state

    def read(self, size=-1):
        data = super().read(size)
        self.state["read"] += len(data)
        return data

    def close(self):
        self.state["closed"] = True
        super().close()


def file(request):
    """?tag=T: the file $BRIDGETEST_FILE, its reads counted."""
    state = STATE[request.GET["tag"]] = {"read": 0, "closed": False}
    return FileResponse(CountingFile(os.environ["BRIDGETEST_FILE"], state))


def big(request):
    """?mb=N: N MiB in one plain HttpResponse (byte i is i % 251)."""
    size = int(request.GET.get("mb", "1")) << 20
    return HttpResponse((bytes(range(251)) * (size // 251 + 1))[:size], content_type="application/octet-stream")


def state(request):
    return JsonResponse(STATE.get(request.GET["tag"]) or {})


urlpatterns = [path("stream", stream), path("file", file), path("big", big), path("state", state)]
'''


@pytest.fixture(scope="module")
def bridge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server with the bridge test applet and a file of FILE_MB MiB for it to serve."""
    root = tmp_path_factory.mktemp("bridge")
    applets = root / "applets"
    package = applets / "bridgetest"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(_APPLET_INIT))
    (package / "urls.py").write_text(textwrap.dedent(_APPLET_URLS))
    data = root / "payload.bin"
    with open(data, "wb") as f:
        for i in range(FILE_MB):
            f.write(hashlib.sha256(b"%d" % i).digest() * (MiB // 32))
    (root / "server").mkdir()
    server = ServerProcess(root / "server", [applets], env={"BRIDGETEST_FILE": str(data)})
    yield server, data
    server.stop()


def _rss(pid: int) -> int:
    """Return the resident set size of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _state(server: ServerProcess, tag: str) -> dict[str, Any]:
    return json.loads(server.get(f"/applets/bridgetest/state?tag={tag}").body)  # type: ignore[no-any-return]


def _slow_reader(server: ServerProcess, path: str) -> socket.socket:
    """Send a GET for ``path`` on a connection with a small receive buffer, reading nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    parts = urlsplit(server.url)
    sock.settimeout(WAIT)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    return sock


class _BigReader:
    """Reads one large answer off a socket in linear time (support.http keeps every
    byte read twice, fine for small answers)."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(buffered)

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError(f"the server closed the connection; {len(self.buf)} bytes unread")
        self.buf += chunk

    def until(self, marker: bytes) -> bytes:
        while (end := self.buf.find(marker)) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[:end + len(marker)]
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def answer(self, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Return the status, the headers (lower-case names) and the body of the next answer."""
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if head_request:
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int(self.until(b"\r\n").split(b";")[0], 16):
                body += self.exactly(size)
                self.exactly(2)
            self.until(b"\r\n")
            return status, headers, bytes(body)
        return status, headers, self.exactly(int(headers["content-length"]))


def _settled(read: Any, pause: float = 1.0) -> Any:
    """Return ``read()`` once it stopped changing over ``pause`` s (the server went as
    far as it would without the client reading); a hang guard of WAIT s."""
    before = read()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(pause)
        now = read()
        if now == before:
            return now
        before = now
    raise AssertionError(f"the server never stopped producing: {before}")


def test_a_streaming_response_follows_a_slow_reader_with_bounded_memory(bridge_server: Any) -> None:
    """A StreamingHttpResponse of 64 MiB to a client that does not read is produced only as far as the output bound and the kernel's buffers allow, keeping the server's memory bounded, and arrives whole once the client reads."""
    server, _ = bridge_server
    tag = uuid.uuid4().hex
    rss_before = _rss(server.pid)
    sock = _slow_reader(server, f"/applets/bridgetest/stream?mb={STREAM_MB}&tag={tag}")
    wait_until(lambda: _state(server, tag).get("chunks", 0) > 0, WAIT, "the stream never started")
    produced = _settled(lambda: _state(server, tag)["chunks"])
    # Without flow control the worker runs the generator to its end (1,024 chunks)
    # into the transport's buffer: 64 MiB more in the server.
    assert produced * STREAM_CHUNK < 16 * MiB, produced
    assert _rss(server.pid) - rss_before < 24 * MiB
    status, _, body = _BigReader(sock).answer()
    sock.close()
    assert status == 200
    assert len(body) == STREAM_MB * MiB
    for i in (0, 1, 255, 256, STREAM_MB * 16 - 1):
        assert body[i * STREAM_CHUNK:(i + 1) * STREAM_CHUNK] == bytes([i % 256]) * STREAM_CHUNK
    assert _state(server, tag) == {"chunks": STREAM_MB * 16, "closed": True}


def test_a_client_leaving_mid_stream_closes_the_generator(bridge_server: Any) -> None:
    """When the client of a streamed answer goes away the view's generator is closed without running to its end."""
    server, _ = bridge_server
    tag = uuid.uuid4().hex
    sock = _slow_reader(server, f"/applets/bridgetest/stream?mb={STREAM_MB}&tag={tag}")
    wait_until(lambda: _state(server, tag).get("chunks", 0) > 0, WAIT, "the stream never started")
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset: the client is gone
    state = wait_until(lambda: (s := _state(server, tag))["closed"] and s, WAIT,
                       "the generator was never closed")
    assert state["chunks"] < STREAM_MB * 16


def test_a_file_response_is_read_as_the_client_reads(bridge_server: Any) -> None:
    """A FileResponse of 48 MiB to a slow client is read from disk only as far as the output bound allows, in blocks, and arrives whole with its Content-Length, the file closed after."""
    server, data = bridge_server
    tag = uuid.uuid4().hex
    rss_before = _rss(server.pid)
    sock = _slow_reader(server, f"/applets/bridgetest/file?tag={tag}")
    wait_until(lambda: _state(server, tag).get("read", 0) > 0, WAIT, "the file was never read")
    read = _settled(lambda: _state(server, tag)["read"])
    assert read < 16 * MiB, read
    assert _rss(server.pid) - rss_before < 24 * MiB
    status, headers, body = _BigReader(sock).answer()
    sock.close()
    assert status == 200
    assert headers["content-length"] == str(FILE_MB * MiB)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data.read_bytes()).digest()
    wait_until(lambda: _state(server, tag)["closed"], WAIT, "the file was never closed")


def test_a_large_plain_response_arrives_whole_with_its_length(bridge_server: Any) -> None:
    """A 32 MiB HttpResponse arrives whole, with its Content-Length and not chunked, and a HEAD of it gets the length without the body."""
    server, _ = bridge_server
    size = 32 * MiB
    with connect(server) as sock:
        host = urlsplit(server.url).netloc
        sock.sendall(f"GET /applets/bridgetest/big?mb=32 HTTP/1.1\r\nHost: {host}\r\n\r\n"
                     f"HEAD /applets/bridgetest/big?mb=32 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        reader = _BigReader(sock)
        status, headers, body = reader.answer()
        head_status, head_headers, _ = reader.answer(head_request=True)
    assert status == 200
    assert headers["content-length"] == str(size) and "transfer-encoding" not in headers
    assert body == (bytes(range(251)) * (size // 251 + 1))[:size]
    assert head_status == 200 and head_headers["content-length"] == str(size)
