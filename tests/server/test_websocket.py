"""Websocket endpoints against a real server, with the ``websockets`` client and raw frames.

Endpoints: ``/ws/echo/echo`` (applets/echo), ``/ws/chat/room`` (applets/chat) and the
test endpoints of tests/applets/common/wstest (small limits, short pings, refusals, a hub).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import struct
import subprocess
import sys
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from support.polling import wait_until
from support.ws import RawClient

WAIT = 15  # seconds: generous, nothing here is timed


def ws_url(server: Any, path: str) -> str:
    return "ws" + server.url[len("http"):] + path


def open_ws(server: Any, path: str, **kw: Any) -> ClientConnection:
    """Connect to ``path`` on ``server`` (no compression, generous timeouts)."""
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", WAIT)
    kw.setdefault("close_timeout", WAIT)
    # Entering the context gives the connection on every websockets version (>= 13),
    # without the "use a context manager" warning of version 17.
    return connect(ws_url(server, path), **kw).__enter__()


def closed_code(ws: ClientConnection) -> int:
    """Read until the server closes the connection; return the code it sent."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=WAIT)
    assert info.value.rcvd is not None, f"no close frame received: {info.value!r}"
    return info.value.rcvd.code


def refusal(server: Any, path: str, **kw: Any) -> Any:
    """Return the HTTP response that refused a connection to ``path``."""
    with pytest.raises(InvalidStatus) as info:
        open_ws(server, path, **kw).close()
    return info.value.response


def events(server: Any, tag: str) -> list[dict[str, Any]]:
    return json.loads(server.get(f"/res/wstest/events?tag={tag}").body)


def on_close_code(server: Any, tag: str) -> int:
    """Wait until the endpoint's on_close ran for ``tag``; return its code."""
    found = wait_until(lambda: [e for e in events(server, tag) if e["hook"] == "on_close"], WAIT, f"on_close of {tag}")
    return found[0]["arg"]


def handshake(server: Any, path: str, headers: dict[str, str], method: str = "GET") -> http.client.HTTPResponse:
    """Send a websocket handshake for ``path`` with ``headers`` (which may replace
    ``Host``) and return the response, its status and headers only."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=WAIT)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": url.netloc, "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version": "13", **headers}
        for key, value in sent.items():
            conn.putheader(key, value)
        conn.endheaders()
        return conn.getresponse()  # a 101 or a HEAD answer has no body to read
    finally:
        conn.close()


# -- messages ------------------------------------------------------------------------


def test_echo_text_and_bytes(server: Any) -> None:
    """Text comes back as str and binary as bytes."""
    with open_ws(server, "/ws/echo/echo") as ws:
        ws.send("héllo")
        assert ws.recv(timeout=WAIT) == "héllo"
        ws.send(b"\x00\xffbin")
        assert ws.recv(timeout=WAIT) == b"\x00\xffbin"


def test_fragmented_message_is_reassembled(server: Any) -> None:
    """A message sent in several frames reaches on_message whole."""
    with open_ws(server, "/ws/echo/echo") as ws:
        ws.send(["frag-", "men-", "ted"])
        assert ws.recv(timeout=WAIT) == "frag-men-ted"
        ws.send([b"\x01", b"\x02", b"\x03"])
        assert ws.recv(timeout=WAIT) == b"\x01\x02\x03"


def test_default_limit_accepts_one_mib_and_closes_above_with_1009(server: Any) -> None:
    """A 1 MiB message is echoed; one byte more closes the connection with 1009."""
    with open_ws(server, "/ws/echo/echo", max_size=None) as ws:
        ws.send(b"x" * (1 << 20))
        assert len(ws.recv(timeout=WAIT)) == 1 << 20
        ws.send(b"x" * ((1 << 20) + 1))
        assert closed_code(ws) == 1009


def test_size_limit_counts_fragments_and_reports_1009_to_on_close(server: Any) -> None:
    """Fragments adding up past max_message_size close with 1009, and on_close gets 1009."""
    tag = uuid.uuid4().hex
    with open_ws(server, f"/ws/wstest/small?tag={tag}") as ws:
        ws.send("y" * 1000)
        assert ws.recv(timeout=WAIT) == "y" * 1000
        ws.send(["z" * 400, "z" * 400, "z" * 400])
        assert closed_code(ws) == 1009
    assert on_close_code(server, tag) == 1009


def test_bad_utf8_closes_with_1007(server: Any) -> None:
    """A text frame that is not UTF-8 closes the connection with 1007."""
    tag = uuid.uuid4().hex
    raw = RawClient(server, f"/ws/wstest/small?tag={tag}")
    try:
        raw.send_frame(0x1, b"ok \xff\xfe")
        opcode, payload = raw.read_frame()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1007
    finally:
        raw.close()
    assert on_close_code(server, tag) == 1007


def test_on_close_gets_the_client_code(server: Any) -> None:
    """The code a client closes with is the one on_close receives."""
    tag = uuid.uuid4().hex
    with open_ws(server, f"/ws/wstest/small?tag={tag}") as ws:
        ws.close(4321, "bye")
    assert on_close_code(server, tag) == 4321


# -- refusals ------------------------------------------------------------------------


def test_plain_http_get_is_told_to_upgrade(server: Any) -> None:
    """A plain GET on an endpoint gets 426 naming the JavaScript client."""
    answer = server.get("/ws/echo/echo")
    assert answer.status == 426
    assert "hanji.connect('echo', 'echo')" in answer.text


def test_accept_returning_false_gives_403(server: Any) -> None:
    """accept() returning False refuses with a clean 403."""
    response = refusal(server, "/ws/wstest/refuse")
    assert response.status_code == 403
    assert b"accept() refused" in response.body


def test_accept_raising_a_status_gives_that_status(server: Any) -> None:
    """WebSocketRefused(401) in accept() gives HTTP 401 with its message."""
    response = refusal(server, "/ws/wstest/refuse?status=401")
    assert response.status_code == 401
    assert b"no entry today" in response.body


def test_accept_bug_gives_500_and_is_reported(server: Any) -> None:
    """An unexpected exception in accept() is a 500, logged and in the error log."""
    response = refusal(server, "/ws/wstest/refuse?boom=1")
    assert response.status_code == 500
    errors = json.loads(server.get("/res/wstest/errors").body)
    assert any("Refuse.accept()" in e["where"] and "accept bug" in e["traceback"] for e in errors)


def test_asynchronous_accept(server: Any) -> None:
    """accept() may answer through a Deferred, refusing or accepting."""
    assert refusal(server, "/ws/wstest/refuse?later=no").status_code == 403
    with open_ws(server, "/ws/wstest/refuse?later=yes") as ws:
        ws.send("still here")
        assert ws.recv(timeout=WAIT) == "still here"


def test_origin_must_match_the_server_unless_allowed(server: Any) -> None:
    """A foreign Origin gets 403; the server's own, a listed one, or none connect."""
    host = urlsplit(server.url).netloc
    response = refusal(server, "/ws/echo/echo", origin="http://evil.example")
    assert response.status_code == 403 and b"allowed_origins" in response.body
    for path, origin in (("/ws/echo/echo", f"http://{host}"), ("/ws/echo/echo", None),
                         ("/ws/wstest/origin", "http://good.example"),
                         ("/ws/wstest/origin", "https://friend.example:9000")):
        with open_ws(server, path, origin=origin) as ws:
            ws.send("o")
            assert ws.recv(timeout=WAIT) == "o"
    assert refusal(server, "/ws/wstest/origin", origin="http://friend.example:9001").status_code == 403


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A token-less loopback server told that a proxy serves it as lab.example.org."""
    from support.paths import APPLETS, TEST_APPLETS
    from support.server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("proxied"), [APPLETS, TEST_APPLETS],
                         ["--allow-host", "lab.example.org"])
    yield proc
    proc.stop()


def test_own_origin_connects_behind_a_tls_terminating_proxy(proxied: Any) -> None:
    """A page served as https://lab.example.org by a proxy that speaks plain HTTP to Hanji connects, with the proxy passing Host or X-Forwarded-Host (and X-Forwarded-Proto)."""
    server = proxied
    upstream = urlsplit(server.url).netloc
    for headers in (
        {"Host": "lab.example.org"},
        {"Host": "LAB.example.org:443"},
        {"Host": upstream, "X-Forwarded-Host": "lab.example.org"},
        {"Host": upstream, "X-Forwarded-Host": "lab.example.org, inner.example", "X-Forwarded-Proto": "https"},
        {"Host": "lab.example.org", "X-Forwarded-Proto": "https"},
    ):
        response = handshake(server, "/ws/echo/echo", {**headers, "Origin": "https://lab.example.org"})
        assert response.status == 101, (headers, response.status)


def test_other_port_or_host_is_refused_behind_a_proxy(proxied: Any) -> None:
    """Behind a proxy, an Origin with another host, or another port than the one the Host or X-Forwarded-Host (or X-Forwarded-Proto) names, gets 403."""
    server = proxied
    upstream = urlsplit(server.url).netloc
    for headers, origin in (
        ({"Host": "lab.example.org"}, "https://evil.example.org"),
        ({"Host": "lab.example.org:8443"}, "https://lab.example.org"),
        ({"Host": upstream, "X-Forwarded-Host": "lab.example.org:8443"}, "https://lab.example.org"),
        ({"Host": upstream, "X-Forwarded-Host": "lab.example.org"}, f"http://{upstream}"),
        ({"Host": "lab.example.org", "X-Forwarded-Proto": "https"}, "https://lab.example.org:8443"),
    ):
        response = handshake(server, "/ws/echo/echo", {**headers, "Origin": origin})
        assert response.status == 403, (headers, origin, response.status)


def test_head_and_other_methods_get_405_allowing_get(server: Any) -> None:
    """HEAD with the upgrade headers gets 405 with Allow: GET instead of an upgrade, and so does POST."""
    for method, extra in (("HEAD", {}), ("POST", {"Content-Length": "0"})):
        response = handshake(server, "/ws/echo/echo", extra, method=method)
        assert (response.status, response.getheader("Allow")) == (405, "GET"), method
        assert response.getheader("Upgrade") is None, method


def test_capacity_limit_gives_403_until_a_place_frees(server: Any) -> None:
    """A third connection to an endpoint capped at two gets 403; after one closes, it connects."""
    first, second = open_ws(server, "/ws/wstest/capped"), open_ws(server, "/ws/wstest/capped")
    try:
        response = refusal(server, "/ws/wstest/capped")
        assert response.status_code == 403 and b"full" in response.body
        first.close()

        def third() -> Any:
            try:
                return open_ws(server, "/ws/wstest/capped")
            except InvalidStatus:
                return None

        wait_until(third, WAIT, "a free place on the capped endpoint").close()
    finally:
        first.close()
        second.close()


# -- liveness ------------------------------------------------------------------------


def test_client_ping_gets_a_pong(server: Any) -> None:
    """A ping from the client is answered."""
    with open_ws(server, "/ws/echo/echo") as ws:
        assert ws.ping(b"are you there").wait(WAIT)


def test_server_pings_and_closes_a_dead_peer(server: Any) -> None:
    """An idle peer is pinged, kept while it answers, and dropped once it stops (on_close 1006)."""
    tag = uuid.uuid4().hex
    raw = RawClient(server, f"/ws/wstest/ping?tag={tag}")
    try:
        for _ in range(2):  # two rounds: a pong keeps the connection alive
            opcode, payload = raw.read_frame()
            assert opcode == 0x9
            raw.send_frame(0xA, payload)
        # Now play dead: read without answering until the server gives up.
        seen = []
        try:
            while True:
                seen.append(raw.read_frame()[0])
        except (EOFError, ConnectionResetError):
            pass
        assert 0x9 in seen
    finally:
        raw.close()
    assert on_close_code(server, tag) == 1006


# -- broadcast -----------------------------------------------------------------------


def test_broadcast_reaches_200_concurrent_clients(server: Any) -> None:
    """One broadcast reaches each of 200 connected clients exactly once."""
    url = ws_url(server, "/ws/wstest/hub")

    async def main() -> list[list[str]]:
        gate = asyncio.Semaphore(40)  # stay under the listen backlog

        async def join() -> Any:
            async with gate:
                return await aconnect(url, compression=None, open_timeout=WAIT, close_timeout=WAIT)

        clients = await asyncio.gather(*(join() for _ in range(200)))
        try:
            await clients[0].send("count")
            assert int(await asyncio.wait_for(clients[0].recv(), WAIT)) >= 200
            await clients[0].send("all:hello everyone")

            async def collect(ws: Any) -> list[str]:
                got = [await asyncio.wait_for(ws.recv(), WAIT)]
                await ws.send("count")  # the answer marks the end of what the hub sent
                while True:
                    message = await asyncio.wait_for(ws.recv(), WAIT)
                    if message.isdigit():
                        return got
                    got.append(message)

            return await asyncio.gather(*(collect(ws) for ws in clients))
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))

    received = asyncio.run(main())
    assert len(received) == 200
    assert all(got == ["hello everyone"] for got in received), received[:3]


def test_broadcast_from_another_thread(server: Any) -> None:
    """broadcast() called from a non-reactor thread reaches every client."""
    clients = [open_ws(server, "/ws/wstest/hub") for _ in range(3)]
    try:
        clients[0].send("thread:from a thread")
        assert [ws.recv(timeout=WAIT) for ws in clients] == ["from a thread"] * 3
    finally:
        for ws in clients:
            ws.close()


# -- hooks ------------------------------------------------------------------------------


def test_connections_refuses_other_threads_in_debug_mode() -> None:
    """In debug mode, connections() called off the reactor thread raises HanjiThreadError."""
    from hanji import _threads
    from hanji._exceptions import HanjiThreadError
    from hanji.core.utils import TwAppletWebSocket

    class Probe(TwAppletWebSocket):
        path = "probe"

    raised: list[BaseException] = []

    def call() -> None:
        try:
            Probe.connections()
        except BaseException as exc:
            raised.append(exc)

    was = _threads.debug_enabled()
    _threads.set_debug(True)
    try:
        thread = threading.Thread(target=call, name="NotTheReactor")
        thread.start()
        thread.join(WAIT)
    finally:
        _threads.set_debug(was)
    assert len(raised) == 1 and isinstance(raised[0], HanjiThreadError), raised
    assert "Probe.connections() must run on the reactor thread" in str(raised[0])


def test_hook_errors_close_with_1011_and_are_reported(server: Any) -> None:
    """An exception in on_open, on_message or an async on_message closes with 1011 and is reported."""
    with open_ws(server, "/ws/wstest/faulty?open_boom=1") as ws:
        assert closed_code(ws) == 1011
    for message in ("boom", "async-boom"):
        with open_ws(server, "/ws/wstest/faulty") as ws:
            ws.send("fine")
            assert ws.recv(timeout=WAIT) == "fine"
            ws.send(message)
            assert closed_code(ws) == 1011
    errors = json.loads(server.get("/res/wstest/errors").body)
    for where, text in (("Faulty.on_open()", "on_open bug"), ("Faulty.on_message()", "on_message bug"),
                        ("Faulty.on_message()", "async on_message bug")):
        assert any(where in e["where"] and text in e["traceback"] for e in errors), (where, errors)
    assert "Faulty.on_message() at /ws/wstest/faulty failed" in server.log


def test_hooks_run_on_the_reactor_as_the_applet(server: Any) -> None:
    """A port opened in on_open is recorded on the applet, and hooks run on the reactor thread."""
    tag = uuid.uuid4().hex
    with open_ws(server, f"/ws/wstest/tracked?tag={tag}") as ws:
        ports = ws.recv(timeout=WAIT)
    assert ports and all(p.isdigit() for p in ports.split(","))
    assert {e["thread"] for e in events(server, tag)} == {"MainThread"}  # the CLI's reactor thread


def test_leaf_endpoint_serves_the_urls_below_its_path(server: Any) -> None:
    """An endpoint with isLeaf = True answers below its path and sees the rest in request.postpath."""
    with open_ws(server, "/ws/wstest/rooms/blue/2") as ws:
        assert ws.recv(timeout=WAIT) == "room blue/2"
    assert refusal(server, "/ws/wstest/small/below").status_code == 404


# -- chat ---------------------------------------------------------------------------------


def test_chat_replays_history_to_a_new_member(server: Any) -> None:
    """A chat message is broadcast to its sender and replayed, in order, to a later member."""
    tag = uuid.uuid4().hex[:8]
    with open_ws(server, "/ws/chat/room") as ann:
        for text in (f"first {tag}", f"second {tag}"):
            ann.send(json.dumps({"name": "ann", "text": text}))
            while json.loads(ann.recv(timeout=WAIT))["text"] != text:
                pass
    with open_ws(server, "/ws/chat/room") as bob:
        seen: list[str] = []
        while len(seen) < 2:
            message = json.loads(bob.recv(timeout=WAIT))
            if tag in message["text"]:
                assert message["name"] == "ann"
                seen.append(message["text"])
    assert seen == [f"first {tag}", f"second {tag}"]


# -- closing with the applet or the server ---------------------------------------------------


def test_deactivation_and_shutdown_close_connections_with_1001(start_server: Any) -> None:
    """Deactivating an applet closes its connections with 1001, and so does stopping the server."""
    srv = start_server()
    echo, hub = open_ws(srv, "/ws/echo/echo"), open_ws(srv, "/ws/wstest/hub")
    echo.send("before")
    assert echo.recv(timeout=WAIT) == "before"
    assert srv.post("/res/wstest/deactivate?id=echo").status == 200
    assert closed_code(echo) == 1001
    hub.send("count")
    assert hub.recv(timeout=WAIT) == "1"  # the other applet's connection is untouched
    srv.stop()
    assert closed_code(hub) == 1001


# -- the notebook client ----------------------------------------------------------------------


def test_notebook_client_send_receive_and_observe(server: Any) -> None:
    """hanji.ws() sends and receives, blocking and awaited, and shows messages to callbacks."""
    from hanji.notebook.ws_client import ws

    seen: list[Any] = []
    with ws("echo", "echo", base_url=server.url) as conn:
        conn.on_message(seen.append)
        conn.send("one")
        assert conn.receive() == "one"
        conn.send(b"\x02")
        assert conn.receive(timeout=WAIT) == b"\x02"

        async def twins() -> Any:
            await conn.asend({"three": 3})
            return await conn.areceive(timeout=WAIT)

        assert asyncio.run(twins()) == '{"three": 3}'
        with pytest.raises(TimeoutError):
            conn.receive(timeout=0.05)
        assert conn.messages == ["one", b"\x02", '{"three": 3}']
    assert seen == ["one", b"\x02", '{"three": 3}']
    assert conn.closed and conn.close_code == 1000


def test_notebook_client_json_and_closing(server: Any) -> None:
    """With json=True messages are decoded; a server close ends receive() with WebSocketClosed."""
    from hanji.notebook.ws_client import WebSocketClosed, ws

    conn = ws("wstest", "faulty", base_url=server.url, json=True)
    conn.send({"a": [1, 2]})
    assert conn.receive(timeout=WAIT) == {"a": [1, 2]}
    conn.send("boom")
    with pytest.raises(WebSocketClosed):
        conn.receive(timeout=WAIT)
    assert conn.close_code == 1011
    with pytest.raises(WebSocketClosed):
        conn.send("too late")
    conn.close()


def test_notebook_client_refused_and_default_url(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal raises WebSocketHandshakeError with the status; HANJI_URL is the default base."""
    from hanji.notebook.ws_client import WebSocketHandshakeError, ws

    monkeypatch.setenv("HANJI_URL", server.url)
    with pytest.raises(WebSocketHandshakeError) as info:
        ws("wstest", "refuse?status=418")
    assert info.value.status == 418 and "no entry today" in str(info.value)
    with ws("echo", "echo") as conn:
        conn.send("via HANJI_URL")
        assert conn.receive() == "via HANJI_URL"


IN_PROCESS = """
import json, sys, threading
import crochet
crochet.setup()
from twisted.internet import reactor
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletWebSocket
from hanji.notebook.ws_client import ws
from hanji.django import setup as django_setup
from hanji.server.runtime import HanjiServer

setup = django_setup.setup([], sys.argv[1])
django_setup.migrate()
server = HanjiServer(reactor, setup, port=0)
on_reactor = crochet.wait_for(timeout=30)(lambda f, *args: f(*args))
on_reactor(server.start)

class Live(TwAppletWebSocket):
    path = "live"
    def on_message(self, message):
        self.send(message + " via " + threading.current_thread().name)

class LiveWeb(WebUI):
    websocket_resources = [Live]

on_reactor(server.activate, Applet(id="live"), LiveWeb)
result = {"main": threading.current_thread().name}
with ws("live", "live", base_url=server.url) as conn:
    conn.send("hi")
    result["echo"] = conn.receive()
    Live.broadcast("from the main thread")
    result["broadcast"] = conn.receive()

    class Live2(Live):  # a new version, as when a cell is run again
        def on_message(self, message):
            self.send("v2 " + message)

    class LiveWeb2(WebUI):
        websocket_resources = [Live2]

    on_reactor(server.activate, Applet(id="live"), LiveWeb2)
    try:
        conn.receive()
    except Exception as exc:
        result["after_swap"] = [type(exc).__name__, conn.close_code]
with ws("live", "live", base_url=server.url) as conn:
    conn.send("hi")
    result["swapped"] = conn.receive()
    on_reactor(server.deactivate, "live")
    try:
        conn.receive()
    except Exception as exc:
        result["after"] = [type(exc).__name__, conn.close_code]
on_reactor(server.shutdown, 5)
print(json.dumps(result))
"""


def test_in_process_server_as_in_a_notebook(tmp_path: Any) -> None:
    """With the reactor in crochet's thread, as in a kernel: hanji.ws() reaches the server, hooks run on the reactor, broadcast() works from the main thread, a hot swap and a deactivation close clients with 1001."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["echo"] == "hi via CrochetReactor" and result["main"] == "MainThread"
    assert result["broadcast"] == "from the main thread"
    assert result["after_swap"] == ["WebSocketClosed", 1001]
    assert result["swapped"] == "v2 hi"
    assert result["after"] == ["WebSocketClosed", 1001]
