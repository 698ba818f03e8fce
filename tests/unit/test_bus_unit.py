"""The bus's parts alone: message and relay framing, the relay's one order, local
delivery, and the broadcast fan-out's immediate writes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from hanji.server.bus import _codec as codec
from hanji.server.bus.hub import APPLET_PREFIX, Hub
from support.polling import wait_until

WAIT = 15.0


# -- framing ------------------------------------------------------------------------------


def test_messages_round_trip_through_their_encoding() -> None:
    """str, bytes and dict/list messages decode to what was encoded; other types are refused."""
    for message in ("héllo \ud800", b"\x00\xff", {"a": [1, 2]}, [1, "x"]):
        assert codec.decode(codec.encode(message)) == message
    assert isinstance(codec.decode(codec.encode("x")), str) and isinstance(codec.decode(codec.encode(b"x")), bytes)
    with pytest.raises(TypeError, match="str, bytes or a dict/list"):
        codec.encode(3)
    with pytest.raises(codec.FrameError):
        codec.decode(b"?data")


def test_frames_are_split_from_a_stream_cut_anywhere() -> None:
    """A stream of frames fed one byte at a time yields each frame's topic and body once, in order."""
    frames = [codec.pack(f"ws:topic{i}", codec.encode(f"m{i}" * i)) for i in range(20)]
    stream = b"".join(codec.pack_sequenced(i + 1, f[4:]) for i, f in enumerate(frames))
    reader = codec.FrameReader()
    out = [p for byte in range(len(stream)) for p in reader.feed(stream[byte:byte + 1])]
    assert [codec.unpack_sequenced(p) for p in out] == [
        (i + 1, f"ws:topic{i}", codec.encode(f"m{i}" * i)) for i in range(20)]


def test_an_oversized_or_malformed_frame_is_refused() -> None:
    """A frame announcing more than the maximum, or shorter than its topic, raises FrameError."""
    with pytest.raises(codec.FrameError, match="announced"):
        codec.FrameReader(max_frame=100).feed(b"\x00\x00\x01\x00")
    with pytest.raises(codec.FrameError):
        codec.unpack(b"\x00\x09ab")


# -- the relay ----------------------------------------------------------------------------


class _Worker:
    """A raw client of the relay, as a worker's connection."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.reader = codec.FrameReader()
        self.got: list[tuple[int, str, bytes]] = []

    def send(self, topic: str, message: Any) -> None:
        self.sock.sendall(codec.pack(topic, codec.encode(message)))

    def receive(self, n: int) -> list[tuple[int, str, bytes]]:
        while len(self.got) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"relay closed after {len(self.got)} frames")
            self.got += [codec.unpack_sequenced(p) for p in self.reader.feed(data)]
        return self.got


def test_the_relay_sends_every_frame_to_every_worker_in_one_numbered_order(tmp_path: Path) -> None:
    """Frames sent by two workers at once reach both workers, the sender included, numbered 1..N in the same order."""
    from hanji.server.bus.relay import start_relay

    path = str(tmp_path / "bus.sock")
    with start_relay(path) as relay:
        a, b = _Worker(path), _Worker(path)
        wait_until(lambda: relay.clients == 2, WAIT, "the workers did not connect")
        # Interleave, and send b's frames in pieces, so that the relay reads partial frames.
        for i in range(200):
            a.send("ws:x", f"a{i}")
            frame = codec.pack("ws:x", codec.encode(f"b{i}"))
            b.sock.sendall(frame[:3])
            b.sock.sendall(frame[3:])
        got_a, got_b = a.receive(400), b.receive(400)
        assert got_a == got_b
        assert [seq for seq, _, _ in got_a] == list(range(1, 401))
        bodies = [codec.decode(body) for _, _, body in got_a]
        assert [m for m in bodies if m[0] == "a"] == [f"a{i}" for i in range(200)]
        assert [m for m in bodies if m[0] == "b"] == [f"b{i}" for i in range(200)]
    assert not os.path.exists(path), "the socket file outlived the relay"


def test_the_relay_drops_a_worker_sending_garbage_and_serves_the_others(tmp_path: Path) -> None:
    """A connection sending a malformed frame is closed; the other workers keep getting frames."""
    from hanji.server.bus.relay import start_relay

    path = str(tmp_path / "bus.sock")
    with start_relay(path) as relay:
        good, bad = _Worker(path), _Worker(path)
        wait_until(lambda: relay.clients == 2, WAIT, "the workers did not connect")
        bad.sock.sendall(b"\x00\x00\x00\x01\x00")  # a frame shorter than its topic length
        wait_until(lambda: relay.clients == 1, WAIT, "the relay kept the garbage sender")
        assert bad.sock.recv(10) == b""
        good.send("app:t", "still here")
        assert codec.decode(good.receive(1)[0][2]) == "still here"


def test_a_relay_replaces_a_stale_socket_file_but_not_a_live_relay(tmp_path: Path) -> None:
    """start_relay removes a socket file nobody listens on, and refuses a path another relay serves."""
    from hanji.server.bus.relay import start_relay

    path = str(tmp_path / "bus.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays: a relay that died
    with start_relay(path):
        with pytest.raises(OSError, match="already listens"):
            start_relay(path)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(FileExistsError):
        start_relay(str(tmp_path / "plain"))


# -- local delivery -----------------------------------------------------------------------


def test_a_message_published_by_a_subscriber_waits_for_the_current_delivery() -> None:
    """Subscribers see one order even when one publishes from its callback: the new message is queued, not delivered inside the first."""
    hub = Hub()
    seen: dict[str, list[Any]] = {"first": [], "second": []}
    topic = APPLET_PREFIX + "t"

    def first(message: Any) -> None:
        seen["first"].append(message)
        if message == "one":
            hub.deliver(topic, codec.encode("two"))

    hub.subscribe(topic, first)
    hub.subscribe(topic, seen["second"].append)
    hub.deliver(topic, codec.encode("one"))
    assert seen["first"] == seen["second"] == ["one", "two"]


def test_a_failing_subscriber_does_not_stop_the_others_and_unsubscribe_ends_delivery(caplog: Any) -> None:
    """An exception in one callback is logged; the next callback still gets the message; unsubscribe() (twice) ends it."""
    hub = Hub()
    topic = APPLET_PREFIX + "t"
    got: list[Any] = []

    def broken(message: Any) -> None:
        raise RuntimeError("boom")

    hub.subscribe(topic, broken)
    stop = hub.subscribe(topic, got.append)
    hub.deliver(topic, codec.encode({"k": 1}))
    assert got == [{"k": 1}]
    assert "boom" in caplog.text and "'t'" in caplog.text
    stop()
    stop()
    hub.deliver(topic, codec.encode("later"))
    assert got == [{"k": 1}] and hub.subscribers(topic) == 1


def test_the_bus_url_names_its_backend() -> None:
    """local, unix:///path and redis:// URLs are understood; anything else is refused with the accepted forms."""
    from hanji.server.bus import check_url

    assert check_url(None) == ("local", "") and check_url("local") == ("local", "")
    assert check_url("unix:///run/bus.sock") == ("unix", "/run/bus.sock")
    assert check_url("redis://h:1/2") == ("redis", "redis://h:1/2")
    with pytest.raises(ValueError, match="absolute"):
        check_url("unix://relative")
    with pytest.raises(ValueError, match="redis://host:port/db"):
        check_url("amqp://x")


# -- the fan-out's immediate writes ---------------------------------------------------------


def _tcp_pair() -> tuple[Any, socket.socket]:
    """Return a Twisted TCP transport on one end of a connected pair (never run by a
    reactor: a MemoryReactor records its writers) and the other end."""
    from twisted.internet import protocol, tcp
    from twisted.internet.testing import MemoryReactor

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    ours = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    peer.settimeout(WAIT)
    transport = tcp.Connection(ours, protocol.Protocol(), reactor=MemoryReactor())
    transport.connected = 1  # as tcp.Server sets it once accepted
    return transport, peer


def test_a_broadcast_frame_reaches_the_kernel_before_the_reactor_turns() -> None:
    """write_now hands bytes to the kernel at once on an idle transport (the peer reads them with no reactor running), and queues them behind unsent output otherwise."""
    from hanji.server.websocket.fanout import frame_of, write_now

    transport, peer = _tcp_pair()
    try:
        write_now(transport, frame_of("hello"))
        assert peer.recv(100) == b"\x81\x05hello"
        assert transport.dataBuffer == b"" and not transport._tempDataLen
        transport.write(b"earlier")  # unsent output: what follows must wait behind it
        write_now(transport, b"later")
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)
        assert transport.doWrite() is None
        peer.setblocking(True)
        assert peer.recv(100) == b"earlierlater"
    finally:
        transport.socket.close()
        peer.close()


def test_a_frame_is_built_once_for_every_connection() -> None:
    """frame_of gives the unmasked single-frame encoding wsproto would send: text for str, binary for bytes."""
    from wsproto import ConnectionType
    from wsproto.connection import Connection
    from wsproto.events import BytesMessage, TextMessage

    from hanji.server.websocket.fanout import frame_of

    conn = Connection(ConnectionType.SERVER)
    for data in ("é" * 200, b"\x00" * 70000):
        event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        assert frame_of(data) == conn.send(event)


def test_the_relay_drops_a_worker_that_stops_reading_and_serves_the_others(tmp_path: Path) -> None:
    """A worker whose unread frames pass max_backlog is disconnected; the reading worker still gets every frame."""
    from hanji.server.bus.relay import start_relay

    path = str(tmp_path / "bus.sock")
    with start_relay(path, max_backlog=256 * 1024) as relay:
        reader, stuck = _Worker(path), _Worker(path)
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_until(lambda: relay.clients == 2, WAIT, "the workers did not connect")
        for i in range(300):
            reader.send("ws:big", f"{i}:".ljust(8192, "x"))
            reader.receive(i + 1)  # the reader keeps up; the stuck one never reads
        wait_until(lambda: relay.clients == 1, WAIT, "the relay kept a worker that does not read")
        assert [codec.decode(body).split(":")[0] for _, _, body in reader.got] == [str(i) for i in range(300)]


def test_a_subscription_made_by_an_applet_ends_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """hanji.subscribe() called as an applet is closed with the applet's other things: later messages do not reach it."""
    from twisted.python import threadable

    from hanji.core._context import OpenedThings, run_as
    from hanji.server import bus

    monkeypatch.setattr(threadable, "ioThread", threadable.getThreadID())  # this thread is the reactor's

    class Applet:
        id = "subscriber"
        _hanji_opened = OpenedThings()

    got: list[Any] = []
    run_as(Applet(), bus.subscribe, "unit-lifetime", got.append)
    bus.publish("unit-lifetime", "one")
    Applet._hanji_opened.close_closables()
    bus.publish("unit-lifetime", "two")
    assert got == ["one"]
