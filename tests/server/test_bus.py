"""The broadcast bus across real processes: two ``hanji serve`` sharing a throwaway
Redis, or the supervisor's relay, or ``--workers 2``; websocket clients on each."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from support.paths import write_applet
from support.polling import wait_until
from support.redis_server import RedisServer
from support.server import ServerProcess

APPLET_INIT = '''"""busapp: the broadcast bus under test."""
import hanji
from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Bus test"

    def on_activate(self):
        from .webUI import Room

        def note(message):  # this process's connections only: the bus did the rest
            for socket in Room.connections():
                socket.send("note:" + message)

        hanji.subscribe("notes", note)


applet = Applet()
'''

APPLET_WEBUI = '''import os

from twisted.internet import reactor, task

import hanji
from hanji.core import applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class Room(TwAppletWebSocket):
    path = "room"
    ping_interval = None

    def on_open(self):
        self.send(f"pid:{os.getpid()}")  # which process serves this connection


def _arg(request, name, default=None):
    value = request.args.get(name.encode())
    return value[0].decode() if value else default


class Burst(TwAppletResource):
    """GET burst?tag=A&n=300: broadcast A:0 .. A:299, ten per reactor turn."""

    path = "burst"

    def render_GET(self, request):
        tag, n = _arg(request, "tag"), int(_arg(request, "n"))

        def step(start):
            for i in range(start, min(start + 10, n)):
                Room.broadcast(f"{tag}:{i}")
            if start + 10 < n:
                reactor.callLater(0, step, start + 10)

        step(0)
        return f"ok {os.getpid()}".encode()


class Loop(TwAppletResource):
    """GET loop?tag=L&n=400&every=0.02: broadcast L:0 .. L:399, one every 20 ms."""

    path = "loop"

    def render_GET(self, request):
        tag, n, every = _arg(request, "tag"), int(_arg(request, "n")), float(_arg(request, "every"))
        counter = iter(range(n))

        def tick():
            i = next(counter, None)
            if i is None:
                loop.stop()
            else:
                Room.broadcast(f"{tag}:{i}")

        loop = task.LoopingCall(tick)
        loop.start(every)
        return b"ok"


class Publish(TwAppletResource):
    """GET publish?text=…: hanji.publish("notes", text)."""

    path = "publish"

    def render_GET(self, request):
        hanji.publish("notes", _arg(request, "text"))
        return b"ok"


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Burst, Loop, Publish]
    websocket_resources = [Room]


web = WebUI()
'''

WAIT = 60.0  # seconds: a hang guard, nothing here is timed


@pytest.fixture
def busapp(tmp_path: Path) -> Path:
    """Return an applet directory holding the busapp applet."""
    return write_applet(tmp_path / "applets", "busapp", {"__init__.py": APPLET_INIT, "webUI.py": APPLET_WEBUI})


class Listener:
    """A websocket client on /ws/busapp/room that records every message, in order,
    from a thread of its own."""

    def __init__(self, server: Any) -> None:
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(server.url.replace("http", "ws") + "/ws/busapp/room",
                                                    open_timeout=WAIT))
        self.messages: list[str] = []
        self.pid: int | None = None  # of the process serving this connection
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                message = self.ws.recv()
                if str(message).startswith("pid:"):
                    self.pid = int(str(message)[4:])
                    continue
                with self.lock:
                    self.messages.append(str(message))
        except Exception:
            pass

    def got(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [m for m in self.messages if m.startswith(prefix)]

    def close(self) -> None:
        self._stack.close()


def _start(start_server: Any, busapp: Path, bus_env: dict[str, str], args: list[str] = ()) -> Any:
    return start_server([busapp], list(args), {"HANJI_STALL_MS": "0", **bus_env})


def _check_one_order(listeners: list[Listener], tags: dict[str, int]) -> None:
    """Every listener got each tag's messages once, in order, and all in the same order."""
    total = sum(tags.values())
    wait_until(lambda: all(len(l.got()) >= total for l in listeners), WAIT,
               lambda: f"messages received: {[len(l.got()) for l in listeners]} of {total}")
    sequences = [l.got() for l in listeners]
    for seq in sequences:
        assert len(seq) == total and len(set(seq)) == total, "a message missing or delivered twice"
        for tag, n in tags.items():
            assert [m for m in seq if m.startswith(tag + ":")] == [f"{tag}:{i}" for i in range(n)]
    assert all(seq == sequences[0] for seq in sequences), "two connections saw different orders"


def _bursts(servers: list[Any], n: int) -> dict[str, int]:
    """Start a burst of ``n`` broadcasts on every server at once; return the tags."""
    tags = {f"P{i}": n for i in range(len(servers))}
    threads = [threading.Thread(target=lambda s=s, t=t: s.get(f"/res/busapp/burst?tag={t}&n={n}"))
               for s, t in zip(servers, tags)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return tags


def _exchange(servers: list[Any], per_server: int = 2, n: int = 300) -> None:
    """Connect listeners to every server, burst from each, check delivery and order."""
    listeners = [Listener(s) for s in servers for _ in range(per_server)]
    try:
        tags = _bursts(servers, n)
        _check_one_order(listeners, tags)
        servers[0].get("/res/busapp/publish?text=hello")
        wait_until(lambda: all(l.got("note:") == ["note:hello"] for l in listeners), WAIT,
                   lambda: f"notes: {[l.got('note:') for l in listeners]}")
    finally:
        for l in listeners:
            l.close()


def test_two_servers_on_redis_deliver_every_broadcast_once_in_one_order(start_server: Any, busapp: Path,
                                                                         tmp_path: Path) -> None:
    """Two hanji serve processes sharing Redis (--bus and HANJI_BUS): 2 x 300 broadcasts from both reach every client of both exactly once, in one order, and hanji.publish reaches the subscribers of both."""
    with RedisServer(tmp_path / "redis") as redis:
        a = _start(start_server, busapp, {}, ["--bus", redis.url])
        b = _start(start_server, busapp, {"HANJI_BUS": redis.url})
        _exchange([a, b])


class _Relay:
    """The supervisor's relay run here, with RedisServer's stop() and start()."""

    def __init__(self, path: Path) -> None:
        from hanji.server.bus.relay import start_relay

        self._start_relay = start_relay
        self.path = str(path)
        self.url = f"unix://{self.path}"
        self.handle = start_relay(self.path)

    def stop(self) -> None:
        self.handle.stop()

    def start(self) -> None:
        self.handle = self._start_relay(self.path)


@pytest.fixture(params=["redis", "relay"])
def outage_bus(request: Any, tmp_path: Path) -> Any:
    """Yield a bus that can be stopped and started again: a throwaway Redis, or a relay."""
    if request.param == "redis":
        with RedisServer(tmp_path / "redis") as redis:
            yield redis
    else:
        relay = _Relay(tmp_path / "bus.sock")
        yield relay
        relay.stop()


def test_bus_outage_keeps_local_delivery_logs_once_and_recovers(start_server: Any, busapp: Path,
                                                                outage_bus: Any) -> None:
    """Redis (or the relay) stopped and started during a broadcast loop: the publisher's own client still gets every message in order, each server logs the outage once, and the other server's client gets messages again once the bus is back."""
    a = _start(start_server, busapp, {"HANJI_BUS": outage_bus.url})
    b = _start(start_server, busapp, {"HANJI_BUS": outage_bus.url})
    local, remote = Listener(a), Listener(b)
    try:
        n = 400
        a.get(f"/res/busapp/loop?tag=L&n={n}&every=0.02")
        wait_until(lambda: len(remote.got("L:")) >= 20, WAIT, "no broadcast crossed to the other server")
        outage_bus.stop()
        wait_until(lambda: "unreachable" in a.log, WAIT, lambda: f"no outage logged:\n{a.log}")
        seen_at_stop = len(local.got("L:"))
        wait_until(lambda: len(local.got("L:")) >= seen_at_stop + 30, WAIT, "local delivery stopped with the bus")
        remote_at_restart = len(remote.got("L:"))
        outage_bus.start()
        wait_until(lambda: "reachable again" in a.log and "reachable again" in b.log, WAIT,
                   lambda: f"no recovery logged:\n{a.log}\n{b.log}")
        wait_until(lambda: len(remote.got("L:")) > remote_at_restart, WAIT,
                   "no broadcast crossed to the other server after the bus came back")
        wait_until(lambda: f"L:{n - 1}" in local.got("L:"), WAIT, "the loop did not end")
        got = local.got("L:")
        assert len(got) == len(set(got)), "a message delivered twice to the publisher's client"
        assert got == sorted(got, key=lambda m: int(m[2:])), "messages out of order"
        # Local delivery went on through the outage: nothing missing at all.
        assert got == [f"L:{i}" for i in range(n)]
        for server in (a, b):
            lines = [line for line in server.log.splitlines() if "unreachable" in line]
            assert len(lines) == 1, lines
    finally:
        local.close()
        remote.close()


def test_relay_orders_broadcasts_of_two_worker_processes(start_server: Any, busapp: Path, tmp_path: Path) -> None:
    """Two hanji serve processes on the relay (start_relay here, HANJI_BUS=unix://…): 2 x 300 broadcasts from both reach every client of both once, in the relay's order."""
    from hanji.server.bus.relay import start_relay

    path = str(tmp_path / "bus.sock")
    with start_relay(path) as relay:
        a = _start(start_server, busapp, {"HANJI_BUS": f"unix://{path}"})
        b = _start(start_server, busapp, {"HANJI_BUS": f"unix://{path}"})
        wait_until(lambda: relay.clients == 2, WAIT, "the workers did not connect to the relay")
        _exchange([a, b])
        assert relay.sequence >= 601


def _help_lists_workers() -> bool:
    out = subprocess.run([sys.executable, "-m", "hanji", "serve", "--help"], capture_output=True, text=True,
                         timeout=60)
    return "--workers" in out.stdout


@pytest.mark.skipif(not _help_lists_workers(), reason="hanji serve has no --workers yet")
def test_workers_share_the_default_relay(busapp: Path, tmp_path: Path) -> None:
    """hanji serve --workers 2 with the default bus: broadcasts from both workers reach the clients of both workers, once each, in one order."""
    server = ServerProcess(tmp_path, [busapp], ["--workers", "2"], {"HANJI_STALL_MS": "0"})
    listeners: list[Listener] = []
    try:
        # The workers share one listening socket: open connections until both serve some.
        def both_serve() -> bool:
            listeners.append(Listener(server))
            wait_until(lambda: listeners[-1].pid is not None, WAIT, "no pid from the server")
            return len({l.pid for l in listeners}) == 2 and len(listeners) >= 4

        wait_until(both_serve, WAIT, "every connection landed on the same worker", interval=0)
        tags: dict[str, int] = {}
        publishers: set[int] = set()
        for i in range(40):  # bursts until each worker published some
            answer = server.get(f"/res/busapp/burst?tag=W{i}&n=50")
            publishers.add(int(answer.text.split()[1]))
            tags[f"W{i}"] = 50
            if len(publishers) == 2 and len(tags) >= 4:
                break
        assert len(publishers) == 2, "every request landed on the same worker"
        _check_one_order(listeners, tags)
    finally:
        for l in listeners:
            l.close()
        server.stop()


def test_an_unknown_bus_url_is_refused_at_start(tmp_path: Path) -> None:
    """hanji serve --bus with a URL of no known kind exits 2 naming the accepted forms."""
    out = subprocess.run([sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(tmp_path / "data"),
                          "--bus", "amqp://localhost"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2
    assert "amqp://localhost" in out.stderr and "redis://host:port/db" in out.stderr
