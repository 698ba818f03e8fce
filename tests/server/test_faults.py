"""Fault isolation against a real server: an applet failing in on_activate (by hanging),
on_deactivate, a render method or a websocket handler is reported, and the others serve.

The applets are in tests/applets/faulty: ``faulty_hooks`` (fails everywhere but in
on_activate), ``hangs_on_activate`` and ``survivor`` (healthy, activated last).
Import and on_activate errors are in test_lifecycle.py.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from support.net import can_connect
from support.paths import FAULTY_APPLETS as FAULTY
from support.polling import wait_until
from support.server import NO_DEBUG

WAIT = 15  # seconds: a hang guard, nothing here is timed


def _errors(srv: Any) -> list[dict[str, str]]:
    return json.loads(srv.get("/res/faulty_hooks/errors").body)


def _survivor_serves(srv: Any) -> list[int]:
    """Check the survivor's resource and Django view answer; return its TCP ports."""
    ping = srv.get("/res/survivor/ping")
    assert ping.status == 200, ping.text
    assert srv.get("/applets/survivor/").text == "survivor view"
    return json.loads(ping.body)["ports"]


def _ws(srv: Any, path: str) -> Any:
    url = "ws" + srv.url[len("http"):] + path
    return connect(url, open_timeout=WAIT, close_timeout=WAIT, compression=None).__enter__()


def _close_code(ws: Any) -> int:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=WAIT)
    assert info.value.rcvd is not None, repr(info.value)
    return int(info.value.rcvd.code)


def test_hung_on_activate_times_out_and_the_others_start(start_server: Any) -> None:
    """An on_activate that never returns fails its applet after --activate-timeout; later applets activate, and the server still stops promptly."""
    srv = start_server([FAULTY], args=["--activate-timeout", "1"])
    assert "Applet activation finished: 2 active, 1 failed." in srv.log
    _survivor_serves(srv)
    assert "hangs_on_activate (failed)" in srv.get("/").text
    assert srv.get("/res/hangs_on_activate/x").status == 404
    reported = [e for e in _errors(srv) if e["applet"] == "hangs_on_activate"]
    assert reported and "did not return within 1 s (--activate-timeout)" in reported[0]["traceback"]
    assert "Applet 'hangs_on_activate' failed to activate" in srv.log
    # The abandoned worker is not a request in flight: the drain does not wait for it.
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    assert "Drain deadline passed" not in srv.log


def test_on_deactivate_failure_at_shutdown_is_reported_and_the_rest_stops_cleanly(start_server: Any) -> None:
    """An on_deactivate that raises at shutdown is logged with its traceback; the other applets still run theirs and close their ports; exit 0."""
    srv = start_server([FAULTY], args=["--activate-timeout", "1"])
    [port] = _survivor_serves(srv)
    assert can_connect(port)
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    log = srv.log
    assert "Applet.on_deactivate() failed" in log and "RuntimeError: on_deactivate fails on purpose" in log
    assert "Applet 'faulty_hooks' deactivated." in log
    assert (srv.data / "survivor-deactivated.txt").read_text() == "on_deactivate ran"
    assert "Applet 'survivor' deactivated." in log and "Hanji stopped." in log
    assert not can_connect(port)


def test_render_faults_are_500s_with_a_reason_and_reported(start_server: Any) -> None:
    """A render method that raises and one whose Deferred fails give 500s naming the applet, are in hanji.errors(), and nothing else breaks."""
    srv = start_server([FAULTY], args=["--activate-timeout", "1"], env=NO_DEBUG)
    for path, error in (("boom", "LookupError: render fails on purpose"),
                        ("fail_later", "ArithmeticError: the Deferred fails on purpose")):
        answer = srv.get(f"/res/faulty_hooks/{path}")
        assert answer.status == 500
        assert "500 Internal Server Error: applet 'faulty_hooks' failed" in answer.text
        assert f"/res/faulty_hooks/{path}" in answer.text and "logger hanji.applet.faulty_hooks" in answer.text
        assert error not in answer.text  # the traceback stays in the log without --debug
        assert error in srv.log
        assert any(e["where"].endswith(f"/res/faulty_hooks/{path}") and error in e["traceback"] for e in _errors(srv))
    _survivor_serves(srv)
    assert srv.get("/res/faulty_hooks/errors").status == 200  # the same applet's other resources too


def test_websocket_handler_faults_close_1011_and_are_reported(start_server: Any) -> None:
    """on_message raising closes that connection with 1011; on_close raising is reported; the endpoint, the applet and the others go on."""
    srv = start_server([FAULTY], args=["--activate-timeout", "1"])
    ws = _ws(srv, "/ws/faulty_hooks/grumpy")
    ws.send("hello")
    assert ws.recv(timeout=WAIT) == "hello"
    ws.send("boom")
    assert _close_code(ws) == 1011
    calm = _ws(srv, "/ws/faulty_hooks/grumpy")
    calm.send("still here")
    assert calm.recv(timeout=WAIT) == "still here"  # a new connection to the same endpoint works
    calm.close(1000)
    errors = _errors(srv)
    assert any("Grumpy.on_message()" in e["where"] and "ValueError: on_message fails on purpose" in e["traceback"]
               for e in errors), errors
    # on_close of both connections raised: reported, nothing else happens.
    closes = wait_until(lambda: [e for e in _errors(srv) if "Grumpy.on_close()" in e["where"]][1:] and
                        [e for e in _errors(srv) if "Grumpy.on_close()" in e["where"]], WAIT, "two on_close errors")
    assert "on_close fails on purpose (code 1011)" in closes[0]["traceback"]
    assert "Grumpy.on_close() at /ws/faulty_hooks/grumpy failed" in srv.log
    again = _ws(srv, "/ws/faulty_hooks/grumpy")
    again.send("and again")
    assert again.recv(timeout=WAIT) == "and again"
    again.close()
    _survivor_serves(srv)
