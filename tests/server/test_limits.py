"""HTTP limits against a real server over raw sockets: body size (413 before the body),
request head size and count (431, 414), slow and idle connections (408, close), and
what these must not cut: websockets and answers that take their time.

Resources and views of tests/applets/limits/limitstest: ``/res/limitstest/small``
(``max_body = 1000``), ``/res/limitstest/roomy`` (``max_body = 100_000``),
``/res/limitstest/later`` (answers after ``?s=`` s), ``/applets/limitstest/size``
(a Django view answering the body's length) and ``/applets/limitstest/slow``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from support.http import WAIT, connect, exchange, read_answer, read_to_eof, trickle
from support.paths import APPLETS, LIMITS_APPLETS
from support.server import ServerProcess
from websockets.sync.client import connect as ws_connect

DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _post_head(path: str, length: int, extra: str = "") -> bytes:
    # Origin: the same origin as Host (the CSRF check on /res).
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode("ascii")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the default limits."""
    proc = ServerProcess(tmp_path_factory.mktemp("limits-default"), [APPLETS, LIMITS_APPLETS])
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a small body limit and short timeouts, set on the command line."""
    proc = ServerProcess(tmp_path_factory.mktemp("limits-tight"), [APPLETS, LIMITS_APPLETS], [
        "--max-body", "2000", "--header-timeout", "1", "--idle-timeout", "1.5",
        "--body-timeout", "1", "--body-min-rate", "200",
    ])
    yield proc
    proc.stop()


# -- body size ----------------------------------------------------------------------


def test_content_length_over_resource_limit_is_refused_before_the_body(plain: ServerProcess) -> None:
    """A Content-Length above a resource's max_body gets 413 naming the limit, the path,
    the applet and the fix while the client has sent no byte of the body; then the
    server closes the connection."""
    with connect(plain) as sock:
        sock.sendall(_post_head("/res/limitstest/small", 5000))
        answer, rest = read_answer(sock)
        assert answer.status == 413, answer
        for part in ("1000", "5000", "/res/limitstest/small", "limitstest", "Small.max_body", "Send less"):
            assert part in answer.text, (part, answer.text)
        assert answer.headers["connection"] == "close"
        read_to_eof(sock)


def test_body_within_resource_limit_is_served(plain: ServerProcess) -> None:
    """A body up to the resource's max_body reaches it in full."""
    answer = exchange(plain, _post_head("/res/limitstest/small", 1000) + b"x" * 1000)
    assert answer.status == 200 and json.loads(answer.body) == {"got": 1000}


def test_chunked_body_is_refused_when_it_passes_the_limit(plain: ServerProcess) -> None:
    """A chunked body is counted as it arrives and refused with 413 once it passes the
    resource's max_body, without waiting for its end."""
    head = b"POST /res/limitstest/small HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"258\r\n" + b"a" * 600 + b"\r\n"  # 0x258 = 600 bytes
    with connect(plain) as sock:
        sock.sendall(head + chunk + chunk)  # 1200 bytes, and no final chunk
        answer, _ = read_answer(sock)
        assert answer.status == 413, answer
        assert "1000" in answer.text and "Small.max_body" in answer.text
        read_to_eof(sock)


def test_server_default_applies_to_django(plain: ServerProcess) -> None:
    """Without a resource limit (a Django view) the server's 10 MiB default applies,
    and the answer says how to raise it."""
    with connect(plain) as sock:
        sock.sendall(_post_head("/applets/limitstest/size", DEFAULT_MAX_BODY + 1))
        answer, _ = read_answer(sock)
    assert answer.status == 413, answer
    assert str(DEFAULT_MAX_BODY) in answer.text and "--max-body" in answer.text
    assert "/applets/limitstest/size" in answer.text


def test_max_body_flag_and_resource_override(tight: ServerProcess) -> None:
    """--max-body sets the limit of Django views and plain resources; a resource's
    max_body replaces it, also upwards."""
    answer = exchange(tight, _post_head("/applets/limitstest/size", 3000))
    assert answer.status == 413 and "2000" in answer.text and "--max-body" in answer.text
    answer = exchange(tight, _post_head("/applets/limitstest/size", 1500) + b"y" * 1500)
    assert answer.status == 200 and answer.text == "1500"
    answer = exchange(tight, _post_head("/res/limitstest/roomy", 5000) + b"z" * 5000)
    assert answer.status == 200 and json.loads(answer.body) == {"got": 5000}


# -- request head --------------------------------------------------------------------


@pytest.mark.parametrize("head, status, reason", [
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
     431, "more than 100 header fields"),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(20))
     + b"\r\n", 431, "more than 65536 bytes"),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nCookie: " + b"c" * 70_000 + b"\r\n\r\n", 431, "Send smaller headers"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "request line"),
], ids=["too-many-headers", "head-too-large", "header-line-too-long", "request-line-too-long"])
def test_oversized_request_head_gets_a_clear_answer(plain: ServerProcess, head: bytes, status: int,
                                                    reason: str) -> None:
    """Too many headers, too large a head or too long a line get 431 or 414 with a
    reason (not a silent drop or a bare 400), then the connection closes."""
    with connect(plain) as sock:
        sock.sendall(head)
        answer, _ = read_answer(sock)
        assert answer.status == status, answer
        assert reason in answer.text, answer.text
        read_to_eof(sock)


def test_malformed_header_gets_400_with_a_reason(plain: ServerProcess) -> None:
    """Twisted's own 400 for a malformed head now says why."""
    answer = exchange(plain, b"GET / HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n")
    assert answer.status == 400 and "malformed" in answer.text


def test_server_still_serves_after_refusals(plain: ServerProcess) -> None:
    """Refused connections leave the server serving."""
    assert plain.get("/res/echo/info").status == 200


# -- slow and idle connections ------------------------------------------------------


def test_slow_loris_head_is_cut_after_the_header_timeout(tight: ServerProcess) -> None:
    """A client trickling header lines (each resetting an idle timer) gets 408 and is
    disconnected once --header-timeout passes from the head's first byte."""
    pieces = [b"GET / HTTP/1.1\r\n", b"Host: localhost\r\n"] + [b"X-Slow-%d: y\r\n" % i for i in range(1000)]
    with connect(tight) as sock:
        got, closed = trickle(sock, pieces, interval=0.2, guard=30)
    assert closed, f"still open after 30 s of trickling; got {got[:200]!r}"
    assert got.startswith(b"HTTP/1.1 408"), got[:300]
    assert b"within 1 s" in got


def test_slow_body_is_cut_below_the_minimum_rate(tight: ServerProcess) -> None:
    """A body trickling in below --body-min-rate over a --body-timeout window gets 408
    and the connection is closed."""
    pieces = [_post_head("/applets/limitstest/size", 1500)] + [b"b"] * 1500
    with connect(tight) as sock:
        got, closed = trickle(sock, pieces, interval=0.1, guard=30)
    assert closed, f"still open after 30 s of trickling; got {got[:200]!r}"
    assert got.startswith(b"HTTP/1.1 408"), got[:300]
    assert b"too slowly" in got


def test_idle_keep_alive_connection_is_closed(tight: ServerProcess) -> None:
    """A keep-alive connection that sends nothing after its answer is closed after
    --idle-timeout (Twisted's default keeps it 12 hours)."""
    with connect(tight) as sock:
        sock.sendall(b"GET /res/echo/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer, rest = read_answer(sock)
        assert answer.status == 200
        assert rest + read_to_eof(sock, guard=WAIT) == b""


def test_stray_crlf_after_a_body_is_not_a_slow_head(tight: ServerProcess) -> None:
    """The CRLF some clients send after a POST body leaves the connection idle (closed
    quietly by the idle timeout), not a request head cut with 408."""
    with connect(tight) as sock:
        sock.sendall(_post_head("/res/limitstest/roomy", 10) + b"0123456789\r\n")
        answer, rest = read_answer(sock)
        assert answer.status == 200
        assert rest + read_to_eof(sock, guard=WAIT) == b""


def test_keep_alive_connection_serves_several_requests(tight: ServerProcess) -> None:
    """Requests one after another on one connection each get their answer (the head
    timer is rearmed per request, the idle timer paused while answering)."""
    with connect(tight) as sock:
        rest = b""
        for _ in range(3):
            sock.sendall(b"GET /res/echo/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer, rest = read_answer(sock, rest)
            assert answer.status == 200


def test_websocket_outlives_the_idle_and_header_timeouts(tight: ServerProcess) -> None:
    """An upgraded websocket is not cut by the HTTP idle or header timeouts."""
    url = "ws" + tight.url[len("http"):] + "/ws/echo/echo"
    with ws_connect(url, open_timeout=WAIT, close_timeout=WAIT, compression=None) as ws:
        ws.send("first")
        assert ws.recv(timeout=WAIT) == "first"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=3.5)  # quiet for longer than both timeouts
        ws.send("still here")
        assert ws.recv(timeout=WAIT) == "still here"


@pytest.mark.parametrize("path, body", [
    ("/res/limitstest/later?s=3.5", "late answer"),
    ("/applets/limitstest/slow?s=3.5", "slow done"),
], ids=["resource-not-done-yet", "django-view"])
def test_answers_that_take_their_time_are_not_cut(tight: ServerProcess, path: str, body: str) -> None:
    """A resource answering later (NOT_DONE_YET) or a slow Django view is answered in
    full though it takes longer than every timeout."""
    with connect(tight) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        answer, _ = read_answer(sock)
    assert answer.status == 200 and answer.text == body


# -- settings -----------------------------------------------------------------------------


def test_cli_defaults_are_the_server_defaults() -> None:
    """`hanji serve` and a HanjiServer built without arguments (the notebook's) share
    the same limits and Django queue."""
    import inspect

    from hanji.cli import _limits, build_parser
    from hanji.server.http.limits import Limits
    from hanji.server.runtime import HanjiServer

    args = build_parser().parse_args(["serve"])
    assert _limits(args) == Limits()
    assert Limits().max_body == DEFAULT_MAX_BODY
    params = inspect.signature(HanjiServer).parameters
    assert args.django_queue == params["django_queue"].default
    assert params["limits"].default is None  # None means Limits()


def test_bad_limit_on_the_command_line_is_a_clear_error(tmp_path: Path) -> None:
    """A negative limit stops `hanji serve` with one line saying which."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "hanji", "serve", "--max-body", "-1", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "max_body" in done.stderr and "Traceback" not in done.stderr
