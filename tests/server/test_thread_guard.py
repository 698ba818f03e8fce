"""The wrong-thread guard of debug mode (issue 6, point 6), against real servers.

The test applet ``tests/applets/common/guardtest`` calls reactor-only APIs from threads:
``request.write``, ``request.finish``, ``reactor.callLater``, the HTTP transport's
``write``, the transport of a connection on the applet's own TCP port, and a plain
``twisted.web.websocket`` send. The shared ``server`` fixture runs with ``--debug``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from websockets.sync.client import connect

from support.paths import TEST_APPLETS
from support.server import NO_DEBUG

WAIT = 15  # seconds: a hang guard, nothing here is timed


def _tcp_answer(server: Any) -> str:
    """Send a chunk to the applet's raw listenTCP port and return its answer line."""
    port = json.loads(server.get("/res/guardtest/tcp_port").text)["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"hello")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode()


def _websocket_answer(server: Any) -> str:
    """Send a message to the plain websocket and return its answer."""
    url = "ws" + server.url[len("http"):] + "/res/guardtest/plainws"
    with connect(url, open_timeout=WAIT, close_timeout=WAIT, compression=None) as ws:
        ws.send("hi")
        return str(ws.recv(timeout=WAIT))


def test_request_write_from_a_thread_is_a_500_with_the_fix(server: Any) -> None:
    """In debug mode request.write from a worker thread raises HanjiThreadError, a 500 that says what to use."""
    answer = server.get("/res/guardtest/write_from_thread")
    assert answer.status == 500, answer.text
    assert "HanjiThreadError: request.write called from thread " in answer.text
    assert "it must run on the reactor thread: use reactor.callFromThread(request.write, data)" in answer.text
    assert "return a Deferred from render_*" in answer.text
    assert "applet 'guardtest'" in answer.text


def test_request_finish_from_a_thread_raises(server: Any) -> None:
    """In debug mode request.finish from a thread of one's own raises HanjiThreadError naming that thread."""
    answer = server.get("/res/guardtest/finish_from_thread")
    assert answer.text.startswith("HanjiThreadError: request.finish called from thread GuardTest-1; "), answer.text
    assert "reactor.callFromThread(request.finish)" in answer.text


def test_call_later_from_a_thread_raises(server: Any) -> None:
    """In debug mode reactor.callLater from a worker thread raises HanjiThreadError with the thread-safe ways."""
    text = server.get("/res/guardtest/call_later_from_thread").text
    assert text.startswith("HanjiThreadError: reactor.callLater called from thread "), text
    assert "reactor.callFromThread(reactor.callLater, delay, f)" in text and "self.call_later(delay, f)" in text


def test_http_transport_write_from_a_thread_raises(server: Any) -> None:
    """In debug mode the HTTP request's transport.write from a thread raises HanjiThreadError."""
    text = server.get("/res/guardtest/transport_write_from_thread").text
    assert text.startswith("HanjiThreadError: transport.write called from thread "), text
    assert "reactor.callFromThread(transport.write, data)" in text


def test_applet_connection_write_from_a_thread_raises(server: Any) -> None:
    """In debug mode transport.write on a connection of an applet's raw listenTCP port, from a thread, raises."""
    assert _tcp_answer(server).startswith("HanjiThreadError: transport.write called from thread ")


def test_websocket_send_from_a_thread_raises(server: Any) -> None:
    """In debug mode a plain twisted.web.websocket send from a thread raises, pointing to TwAppletWebSocket.send()."""
    text = _websocket_answer(server)
    assert text.startswith("HanjiThreadError: transport.write called from thread "), text
    assert "TwAppletWebSocket.send() is safe from any thread" in text


def test_hanji_thread_error_is_public_and_keeps_the_old_name() -> None:
    """HanjiThreadError is exported by hanji, is a HanjiError, and WrongThreadError is the same class."""
    import hanji
    from hanji._exceptions import HanjiError, WrongThreadError

    assert hanji.HanjiThreadError is WrongThreadError
    assert issubclass(hanji.HanjiThreadError, HanjiError)


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server without --debug, with the test applets."""
    from support.server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("no-debug"), [TEST_APPLETS], env=NO_DEBUG)
    yield proc
    proc.stop()


def test_without_debug_the_calls_are_not_checked(plain_server: Any) -> None:
    """Without --debug none of the wrong-thread calls raises: the guard is off in hanji serve."""
    assert plain_server.get("/res/guardtest/write_from_thread").status == 200
    assert plain_server.get("/res/guardtest/call_later_from_thread").text == "ok"
    assert plain_server.get("/res/guardtest/transport_write_from_thread").text == "ok"
    assert _tcp_answer(plain_server) == "ok\n"
    assert _websocket_answer(plain_server) == "ok"
    assert "HanjiThreadError" not in plain_server.log
