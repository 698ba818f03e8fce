"""The HTTP/1.1 front of a real ``hanji serve``: twisted.web's parser and the
httptools one (``--http``, ``HANJI_HTTP_PARSER``) both serve every kind of route.

The protocol suites (fuzz, limits, bad input, websockets, reliability, access,
routing) run against either parser with ``HANJI_HTTP_PARSER=twisted`` or
``=httptools`` in the environment; this module checks the choice itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.http import connect, exchange, read_answer
from support.paths import APPLETS

HELP = (APPLETS / "hello_world" / "static" / "help.html").read_bytes()


@pytest.mark.parametrize("parser", ["twisted", "httptools"])
def test_both_parsers_serve_every_kind_of_route(start_server: Any, parser: str) -> None:
    """``hanji serve --http PARSER`` logs the parser it uses and serves a /res
    resource, a Django view, a static file and a websocket handshake with it."""
    server = start_server([APPLETS], ["--http", parser])
    assert f"HTTP/1.1 parser: {parser}" in server.log
    info = server.get("/res/echo/info")
    assert info.status == 200 and "configured_port" in json.loads(info.text)
    page = server.get("/applets/notes/")
    assert page.status == 200 and "<form" in page.text
    static = server.get("/static/hello_world/help.html")
    assert static.status == 200 and static.body == HELP
    host = server.url.split("//", 1)[1].encode()
    answer = exchange(server, b"GET /ws/echo/echo HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: " + server.url.encode() + b"\r\n\r\n")
    assert answer.status == 101, answer


@pytest.mark.parametrize("parser", ["twisted", "httptools"])
def test_pipelined_requests_of_every_kind_are_answered_in_order(start_server: Any, parser: str) -> None:
    """A /res request, a Django view, a static file and an unknown method sent in
    one write on one connection get their answers in that order."""
    server = start_server([APPLETS], ["--http", parser])
    host = server.url.split("//", 1)[1].encode()

    def get(target: bytes, method: bytes = b"GET") -> bytes:
        return method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"

    with connect(server) as sock:
        sock.sendall(get(b"/res/echo/info") + get(b"/applets/notes/") + get(b"/static/hello_world/help.html")
                     + get(b"/static/hello_world/help.html", b"FOO") + get(b"/res/echo/info?again=1"))
        rest = b""
        statuses = []
        bodies = []
        for _ in range(5):
            answer, rest = read_answer(sock, rest)
            statuses.append(answer.status)
            bodies.append(answer.body)
    assert statuses == [200, 200, 200, 405, 200]
    assert b"configured_port" in bodies[0] and b"<form" in bodies[1] and bodies[2] == HELP


def test_the_default_parser_is_httptools(start_server: Any) -> None:
    """Without --http nor HANJI_HTTP_PARSER, the site parses with httptools."""
    server = start_server([APPLETS], env={"HANJI_HTTP_PARSER": ""})
    assert "HTTP/1.1 parser: httptools" in server.log
    assert server.get("/res/echo/info").status == 200


def test_an_unknown_parser_is_a_clear_error(tmp_path: Path) -> None:
    """HANJI_HTTP_PARSER naming no parser stops `hanji serve` with one line naming
    the variable and the choices."""
    done = subprocess.run([sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(tmp_path)],
                          env={"HANJI_HTTP_PARSER": "h2o", "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "HANJI_HTTP_PARSER='h2o'" in done.stderr and "httptools, twisted" in done.stderr
    assert "Traceback" not in done.stderr
