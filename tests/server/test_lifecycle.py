"""Applet life cycle and server stop: echo protocol, deactivation, drain, failures, CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from support.net import can_connect
from support.paths import APPLETS, BROKEN_APPLETS as BROKEN, TEST_APPLETS
from support.server import NO_DEBUG


def echo_port(server) -> int:
    return json.loads(server.get("/res/echo/info").text)["listening"][0]


def test_echo_round_trip(server):
    """The echo applet's TCP protocol, opened with callFromThread in on_activate, echoes lines."""
    with socket.create_connection(("127.0.0.1", echo_port(server)), timeout=10) as sock:
        sock.sendall(b"hello hanji\r\n")
        data = b""
        while not data.endswith(b"\n"):
            data += sock.recv(1024)
    assert data == b"hello hanji\n"


def test_echo_port_closed_after_stop(start_server):
    """Stopping the server closes the port the echo applet opened, and exits 0."""
    srv = start_server([APPLETS])
    port = echo_port(srv)
    assert can_connect(port)
    assert srv.stop(signal.SIGTERM) == 0
    assert not can_connect(port)
    assert "Applet 'echo' deactivated." in srv.log
    assert "Hanji serves" in (srv.data / "hanji.log").read_text()  # logs to the data dir too


def test_inprocess_deactivation_swap_and_timeouts(tmp_path):
    """Deactivation closes ports, connections and timers; a swap keeps in-flight answers; a timed-out activation still closes what it opened."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_inprocess_script.py")),
         str(APPLETS), str(TEST_APPLETS), str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=dict(os.environ, HANJI_ECHO_PORT="0"),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] is True and result["echo"] == "ping\n"
    assert result["after_deactivate"] is False  # the listening port is closed
    assert result["client_closed"] is True  # and so is the connection it accepted
    assert result["in_flight_at_swap"] is True  # the request was waiting when the swap came
    assert result["swap_answer"] == [200, "slept"]  # a Deferred in flight survives a hot swap
    assert result["version_after_swap"] == 2
    assert result["old_deactivate_thread"].startswith("HanjiDjango-")
    assert result["ticks_after_deactivate"] == 0  # the LoopingCall started via callFromThread stopped
    assert result["timed_out_with"] in ("CancelledError", "TimeoutError")
    assert result["slow_state"] == "failed"
    assert result["slow_ports_left"] == []


def test_drain_lets_inflight_django_view_finish(start_server):
    """SIGTERM stops listening but lets an in-flight slow Django view complete, then exits 0."""
    srv = start_server([APPLETS, TEST_APPLETS])
    answers = {}

    def slow():
        with urllib.request.urlopen(srv.url + "/rootmounted/slow?s=2", timeout=30) as resp:
            answers["slow"] = (resp.status, resp.read())

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)  # the request is now in a Django worker
    srv.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert answers["slow"] == (200, b"slow done")
    assert srv.stop() == 0


def test_drain_deadline_does_not_hang(start_server):
    """A Django view slower than the drain deadline cannot keep the server from exiting."""
    srv = start_server([TEST_APPLETS], args=["--drain-timeout", "0.5"])
    def stuck():
        try:
            urllib.request.urlopen(srv.url + "/rootmounted/slow?s=20", timeout=30)
        except OSError:
            pass  # the server exits under it: expected

    threading.Thread(target=stuck, daemon=True).start()
    time.sleep(0.5)
    assert srv.stop(signal.SIGINT, timeout=15) == 0
    assert "Drain deadline passed with 1 request(s) in flight." in srv.log


def test_failing_applets_reported_others_serve(start_server):
    """Applets whose import or on_activate fails are reported by name with a traceback; the others serve."""
    srv = start_server([BROKEN], env=NO_DEBUG)
    assert srv.get("/res/healthy/ping").text == "pong"
    log = srv.log
    assert "Applet 'broken_import' failed to import" in log
    assert "ImportError: broken_import is broken on purpose" in log
    assert "Applet 'broken_activate' failed to activate" in log
    assert "ValueError: on_activate fails on purpose" in log
    home = srv.get("/").text
    assert "broken_activate (failed)" in home and "broken_import (failed)" in home
    assert "ValueError: on_activate fails on purpose" in home  # the summary line...
    assert "Traceback (most recent call last)" not in home  # ...not the traceback, without --debug
    assert srv.get("/res/broken_activate/x").status == 404


def test_startapplet_skeleton_is_served(tmp_path, start_server):
    """`hanji startapplet NAME DIR` writes an applet that `hanji serve` then serves."""
    target = tmp_path / "mine"
    out = subprocess.run([sys.executable, "-m", "hanji", "startapplet", "gadget", str(target)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (target / "gadget" / "templates" / "content.html").is_file()
    srv = start_server([target])
    assert json.loads(srv.get("/res/gadget/hello").text) == {"applet": "gadget", "hello": "world"}
    assert "Gadget: a Django view." in srv.get("/applets/gadget/").text
    assert 'id="applet-gadget"' in srv.get("/").text
    again = subprocess.run([sys.executable, "-m", "hanji", "startapplet", "gadget", str(target)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exists" in again.stderr
    shadow = subprocess.run([sys.executable, "-m", "hanji", "startapplet", "json", str(target)],
                            capture_output=True, text=True, timeout=60)
    assert shadow.returncode == 2 and "already an importable module" in shadow.stderr


def test_manage_runs_django_commands(tmp_path):
    """`hanji manage` runs Django management commands with Hanji's settings and applets."""
    out = subprocess.run(
        [sys.executable, "-m", "hanji", "manage", "--applets", str(APPLETS), "--data", str(tmp_path),
         "showmigrations", "notes"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "0001_initial" in out.stdout


def test_port_taken_is_a_clear_error(start_server, tmp_path):
    """`hanji serve` on a taken port exits 1 with a message saying what to do."""
    srv = start_server([TEST_APPLETS])
    port = srv.url.rsplit(":", 1)[1]
    out = subprocess.run([sys.executable, "-m", "hanji", "serve", "--port", port, "--data", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1
    assert "Pick another port with --port" in out.stderr


def test_access_log_is_opt_in(start_server, tmp_path):
    """No access line is logged by default; --access-log PATH writes one per request there."""
    quiet = start_server([TEST_APPLETS])
    quiet.get("/res/contract/json")
    assert "GET /res/contract/json" not in quiet.log
    path = tmp_path / "access.log"
    loud = start_server([TEST_APPLETS], args=["--access-log", str(path)])
    loud.get("/res/contract/json")
    assert loud.stop() == 0
    assert '"GET /res/contract/json HTTP/1.1" 200' in path.read_text()


def test_shutdown_with_stuck_django_pool_keeps_the_deadline(start_server):
    """With every Django worker stuck past the drain deadline, on_deactivate hooks still run and the server exits."""
    srv = start_server([TEST_APPLETS], args=["--django-threads", "1", "--drain-timeout", "0.5"])

    def stuck():
        try:
            urllib.request.urlopen(srv.url + "/rootmounted/slow?s=60", timeout=90)
        except OSError:
            pass

    threading.Thread(target=stuck, daemon=True).start()
    time.sleep(0.5)
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    assert "Applet 'contract' deactivated." in srv.log


def test_drain_waits_for_views_whose_client_left(start_server):
    """A Django view still running after its client gave up counts as in flight for the drain."""
    srv = start_server([TEST_APPLETS], args=["--drain-timeout", "1"])
    try:
        urllib.request.urlopen(srv.url + "/rootmounted/slow?s=60", timeout=0.5)
    except OSError:
        pass  # the client gives up; the view goes on in its worker
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    assert "Drain deadline passed with 1 request(s) in flight." in srv.log
