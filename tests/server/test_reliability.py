"""Bounded memory whatever a client does, logs that cannot fill the disk, exits that
always happen, and errors that say what happened; against real servers."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.http import connect, exchange, read_answer
from support.polling import wait_until
from support.ws import RawClient

WAIT = 20.0  # a hang guard, never a timed assertion


def _rss(pid: int) -> int:
    """Return the resident set size of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _host(server: Any) -> str:
    return urlsplit(server.url).netloc


# -- 1. HTTP output backpressure -------------------------------------------------------


@pytest.mark.parametrize("path", ["/res/slowpeer/big", "/applets/slowpeer/big/"])
def test_pipelined_requests_wait_while_their_answers_are_unread(server: Any, path: str) -> None:
    """A client that pipelines 200 requests for 512 kB answers (a resource's or a Django
    view's) and reads nothing gets only as many answered as the output bound and the
    kernel's buffers hold; once it reads, every answer arrives."""
    tag = uuid.uuid4().hex
    count = 200
    request = f"GET {path}?kb=512&tag={tag} HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode()
    sock = connect(server)
    sock.sendall(request * count)

    def renders() -> int:
        return int(json.loads(server.get(f"/res/slowpeer/renders?tag={tag}").body)["renders"])

    wait_until(lambda: renders() > 0, WAIT, "the first pipelined request was never answered")
    time.sleep(1.0)  # let the server go as far as it would
    # Without backpressure all 200 (100 MB) are rendered into the send buffer.
    assert renders() < 60
    rest = b""
    for _ in range(count):
        answer, rest = read_answer(sock, rest)
        assert answer.status == 200 and len(answer.body) == 512 * 1024
    sock.close()
    assert renders() == count


# -- 2 and 3. websocket send limits, slow consumers, memory freed on close ------------------


def _events(server: Any, tag: str) -> list[dict[str, Any]]:
    return json.loads(server.get(f"/res/slowpeer/events?tag={tag}").body)  # type: ignore[no-any-return]


def test_a_websocket_peer_that_never_reads_is_closed_with_1013(server: Any) -> None:
    """Past max_send_buffer send() reports the connection not writable; past twice it the
    connection is closed with 1013 and on_close gets 1013."""
    tag = uuid.uuid4().hex
    raw = RawClient(server, "/ws/slowpeer/flood", rcvbuf=8192)
    try:
        raw.send_frame(0x1, f"400 65536 {tag}".encode())  # 25 MB the client will not read
        hooks = wait_until(lambda: {e["hook"]: e["arg"] for e in _events(server, tag)}.get("on_close") and
                           {e["hook"]: e["arg"] for e in _events(server, tag)}, WAIT,
                           lambda: f"the slow reader was not closed: {_events(server, tag)}")
        assert hooks["on_close"] == 1013
        assert 0 < hooks["not_writable"] < 400
    finally:
        raw.close()


def test_closed_websockets_free_their_unsent_data_at_once(start_server: Any) -> None:
    """Connections that never read and then drop release the data queued for them on
    close, without waiting for the garbage collector (hanji serve freezes its heap)."""
    server = start_server()
    before = _rss(server.pid)
    clients = []
    tags = []
    for _ in range(6):
        tag = uuid.uuid4().hex
        raw = RawClient(server, "/ws/slowpeer/hoard", rcvbuf=8192)
        raw.send_frame(0x1, f"40 1048576 {tag}".encode())  # 40 MB queued for each
        clients.append(raw)
        tags.append(tag)
    for tag in tags:
        wait_until(lambda: any(e["hook"] == "sent" for e in _events(server, tag)), WAIT, "never sent")
    loaded = _rss(server.pid)
    assert loaded - before > 150 * 1024 * 1024  # the queued data is really held
    for raw in clients:
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        raw.close()  # a reset: the server's connectionLost runs at once
    for tag in tags:
        wait_until(lambda: any(e["hook"] == "on_close" for e in _events(server, tag)), WAIT, "not closed")
    after = wait_until(lambda: (rss := _rss(server.pid)) < loaded - 150 * 1024 * 1024 and rss, WAIT,
                       lambda: f"RSS stayed at {_rss(server.pid) >> 20} MB after close "
                               f"(before {before >> 20} MB, loaded {loaded >> 20} MB)")
    assert after - before < 60 * 1024 * 1024


# -- 4. SIGTERM always ends the process ------------------------------------------------------


def test_sigterm_ends_the_process_despite_a_thread_an_applet_left(start_server: Any) -> None:
    """A plain thread an applet started does not keep hanji serve alive after SIGTERM:
    it exits 0 after the clean drain and names the thread in the log."""
    server = start_server()
    assert server.post("/res/slowpeer/leave_thread").status == 200
    assert server.stop(timeout=30) == 0
    assert "Hanji stopped." in server.log
    assert "Threads still running after the shutdown: forgotten-worker" in server.log


# -- 5. logs -------------------------------------------------------------------------------


def test_refusals_are_logged_short_and_not_one_by_one(start_server: Any) -> None:
    """Fifty 413s for 7 kB paths add a few short lines to the log, not 400 kB."""
    server = start_server(args=["--max-body", "1000"])
    log_file = server.data / "hanji.log"
    size_before = log_file.stat().st_size
    path = "/res/slowpeer/" + "p" * 7000
    for _ in range(50):
        answer = exchange(server, (f"POST {path} HTTP/1.1\r\nHost: {_host(server)}\r\n"
                                   "Content-Length: 5000\r\n\r\n").encode())
        assert answer.status == 413
    wait_until(lambda: "characters)" in log_file.read_text(), WAIT, "no refusal was logged")
    grown = log_file.stat().st_size - size_before
    assert grown < 8000
    assert log_file.read_text().count("Refused a request") <= 5


def test_hanji_log_is_rotated_by_size(start_server: Any) -> None:
    """hanji.log is rotated at --log-max-bytes, keeping --log-backups old files."""
    server = start_server(args=["--log-max-bytes", "20000", "--log-backups", "2"])
    for _ in range(10):
        assert server.get("/res/slowpeer/chatty?n=10").status == 200
    logs = server.data
    wait_until(lambda: (logs / "hanji.log.2").exists(), WAIT, "hanji.log was not rotated twice")
    assert not (logs / "hanji.log.3").exists()
    assert all(p.stat().st_size <= 21000 for p in logs.glob("hanji.log*"))


# -- 6. resource exhaustion ----------------------------------------------------------------


def test_a_full_disk_is_a_503_with_the_reason_not_the_applets_fault(start_server: Any) -> None:
    """A resource or a Django view failing with ENOSPC answers 503 saying the disk is full;
    it is logged once per burst and not recorded against the applet."""
    server = start_server()
    for path in ("/res/slowpeer/diskfull", "/res/slowpeer/diskfull", "/applets/slowpeer/diskfull/"):
        answer = server.get(path)
        assert answer.status == 503, (path, answer.text)
        assert "disk is full" in answer.text and "not the applet's fault" in answer.text
        assert answer.headers.get("retry-after")
    log = server.log
    assert log.count("Answering 503: the server's disk is full") == 1
    assert "slowpeer" not in log.split("Answering 503")[0].split("Applet activation finished")[-1]


# -- 7. Host headers, stalls -------------------------------------------------------------------


def test_an_http11_request_without_host_is_a_400(server: Any) -> None:
    """HTTP/1.1 requires a Host header: without one the answer is 400 with the reason."""
    answer = exchange(server, b"GET /res/slowpeer/renders?tag=x HTTP/1.1\r\n\r\n")
    assert answer.status == 400 and "Host header" in answer.text


def test_two_host_headers_are_a_400_on_every_route(server: Any) -> None:
    """Two Host headers get 400 on /res, /static and Django routes alike."""
    host = _host(server)
    for path in ("/res/slowpeer/renders?tag=x", "/static/hanji/hanji.js", "/"):
        answer = exchange(server, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n".encode())
        assert answer.status == 400 and "2 Host headers" in answer.text, (path, answer)


def test_a_stall_logs_how_long_it_lasted(start_server: Any) -> None:
    """When a reactor stall ends the log says how long the reactor was blocked."""
    server = start_server()
    assert server.get("/res/guardtest/block").status == 200
    line = wait_until(lambda: [ln for ln in server.log.splitlines() if "Reactor stall ended" in ln], WAIT,
                      "no end of stall was logged")[0]
    blocked_ms = int(line.split("blocked for ")[1].split(" ms")[0])
    assert blocked_ms >= 150  # Block sleeps 200 ms
    assert "applet 'guardtest'" in line


def test_a_chunk_size_over_the_body_limit_is_a_413_at_once(start_server: Any) -> None:
    """A chunk-size line announcing more than the body limit gets 413 before the chunk's
    data arrives, not a 408 when the body timer runs out."""
    server = start_server(args=["--max-body", "1000"])
    with connect(server) as sock:
        sock.sendall((f"POST /res/slowpeer/big HTTP/1.1\r\nHost: {_host(server)}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\nfffff\r\nonly a little").encode())
        answer = read_answer(sock)[0]
    assert answer.status == 413 and "announces 1048575 bytes" in answer.text


def test_a_websocket_client_whose_answers_pile_up_is_paused_not_closed(server: Any) -> None:
    """A client that sends messages the applet answers but reads none of the answers is
    no longer read once its answers pass the bound (its sending blocks); the connection
    stays open, and once it reads, the answers come and it can go on."""
    raw = RawClient(server, "/ws/echo/echo", rcvbuf=8192)
    payload = b"e" * 65536
    raw.sock.settimeout(3.0)
    sent = 0
    try:
        for _ in range(2000):  # 128 MB: far more than any buffer on the way
            raw.send_frame(0x2, payload)
            sent += 1
    except TimeoutError:
        pass  # the server stopped reading us: TCP's flow control blocked the send
    assert 0 < sent < 2000
    raw.sock.settimeout(WAIT)
    for _ in range(min(sent, 20)):
        opcode, data = raw.read_frame()
        assert opcode == 0x2 and data == payload
    raw.close()
