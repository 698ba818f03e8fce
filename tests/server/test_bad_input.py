"""Regression tests for the bad input that tests/server/test_fuzz.py found answered
with a 5xx or a dropped connection; each gets a 4xx (or is ignored) now."""

from __future__ import annotations

from typing import Any

from support.http import Answer, exchange
from support.paths import APPLETS


def send(server: Any, data: bytes, head: bool = False) -> Answer:
    """Send raw bytes (Host and Connection: close added after the request line); fail
    if the server closes without answering."""
    line, _, rest = data.partition(b"\r\n")
    host = server.url.split("//", 1)[1].encode()
    return exchange(server.url, line + b"\r\nHost: " + host + b"\r\nConnection: close\r\n" + rest, head)


def test_static_segment_with_nul_or_bad_utf8_is_404(server: Any) -> None:
    """``%00`` and non-UTF-8 segments under /static/ name no file: 404, no error logged."""
    for path in (b"/static/hello_world/%00", b"/static/hello_world/a%00b", b"/static/hello_world/%ff",
                 b"/static/hanji/%c3%28"):
        answer = send(server, b"GET " + path + b" HTTP/1.1\r\n\r\n")
        assert answer.status == 404, (path, answer.raw[:300])
    assert "embedded null byte" not in server.log
    assert "Could not decode path segment" not in server.log


def test_malformed_range_header_is_ignored(server: Any) -> None:
    """A Range header that is not valid (even non-UTF-8) is ignored: the whole file, 200."""
    whole = (APPLETS / "hello_world" / "static" / "help.html").read_bytes()
    for value in (b"\x80", b"bytes", b"\xff=0-1", b"bytes=x"):
        answer = send(server, b"GET /static/hello_world/help.html HTTP/1.1\r\nRange: " + value + b"\r\n\r\n")
        assert answer.status == 200 and answer.body == whole, (value, answer.raw[:300])
    ranged = send(server, b"GET /static/hello_world/help.html HTTP/1.1\r\nRange: bytes=0-4\r\n\r\n")
    assert ranged.status == 206 and ranged.body == whole[:5]


HANDSHAKE = (b"GET /ws/echo/echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


def test_garbled_origin_on_a_websocket_is_refused_with_403(server: Any) -> None:
    """An Origin that is not a URL (``http://[``) is a foreign origin: 403, not 500."""
    for origin in (b"http://[", b"http://[::1", b"\xff\xfe"):
        answer = send(server, HANDSHAKE + b"Origin: " + origin + b"\r\n\r\n")
        assert answer.status == 403, (origin, answer.raw[:300])
        assert b"may not connect" in answer.body


def test_websocket_handshake_with_two_host_headers_is_400(server: Any) -> None:
    """A handshake with two Host headers is refused with 400 (as any request with two), not 500."""
    answer = send(server, HANDSHAKE + b"Host: localhost\r\n\r\n")
    assert answer.status == 400, answer.raw[:300]
    assert b"2 Host headers" in answer.body


def test_websocket_handshake_with_non_ascii_extensions_is_400(server: Any) -> None:
    """Non-ASCII bytes in Sec-WebSocket-Extensions (which wsproto decodes as ASCII)
    make a broken handshake: 400, not 500."""
    answer = send(server, HANDSHAKE + b"Sec-WebSocket-Extensions: \x80\r\n\r\n")
    assert answer.status == 400, answer.raw[:300]
    assert b"not a valid websocket handshake" in answer.body


def test_head_on_a_post_only_resource_is_405(server: Any) -> None:
    """HEAD on a resource with render_POST only is 405 (Allow: POST), not a 500."""
    answer = send(server, b"HEAD /res/hello_world/path_to_my_resource HTTP/1.1\r\n\r\n", head=True)
    assert answer.status == 405, answer.raw[:300]
    assert answer.headers.get("allow") == "POST"
    # HEAD on a GET resource still answers as GET without the body.
    answer = send(server, b"HEAD /res/contract/json HTTP/1.1\r\n\r\n", head=True)
    assert answer.status == 200 and answer.headers.get("content-type") == "application/json"


def test_other_methods_are_405_not_501(server: Any) -> None:
    """PUT, DELETE, OPTIONS and unknown methods on /res and static files get 405 with
    Allow (Twisted answered 501 to all but GET, HEAD and POST)."""
    for method, path, allowed in (
        (b"PUT", b"/res/contract/json", "GET"),
        (b"DELETE", b"/res/hello_world/path_to_my_resource", "POST"),
        (b"OPTIONS", b"/static/hello_world/help.html", "GET"),
        (b"FOO", b"/res/echo/info", "GET"),
    ):
        # Same-origin: unsafe methods on /res pass the CSRF check first.
        answer = send(server, method + b" " + path + b" HTTP/1.1\r\nOrigin: " + server.url.encode()
                      + b"\r\nContent-Length: 0\r\n\r\n")
        assert answer.status == 405, (method, path, answer.raw[:300])
        assert allowed in (answer.headers.get("allow") or ""), answer.raw[:300]
        assert b"does not support" in answer.body


def test_unparsable_content_type_is_400(server: Any) -> None:
    """A Content-Type that Twisted's parser chokes on (a vertical tab inside) gets a
    400 instead of a connection dropped with an "Unhandled Error"."""
    answer = send(server, b"POST /res/contract/args HTTP/1.1\r\nOrigin: " + server.url.encode()
                  + b"\r\nContent-Type: a\x0bb\r\nContent-Length: 1\r\n\r\nx")
    assert answer.status == 400, answer.raw[:300]
    assert server.get("/res/contract/json").status == 200



def test_post_to_a_url_without_its_slash_is_404_not_500(server: Any) -> None:
    """A POST to a Django URL lacking its trailing slash cannot be redirected without
    losing its body: 404, not Django's debug-mode RuntimeError (a 500)."""
    answer = send(server, b"POST /applets/notes HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert answer.status == 404, answer.raw[:300]
    assert send(server, b"GET /applets/notes HTTP/1.1\r\n\r\n").status == 301  # GET still redirects
