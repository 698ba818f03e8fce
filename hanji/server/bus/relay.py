"""The supervisor's broadcast relay: one sequencer for the workers of one host.

Runs in the supervisor process, in its own thread (``HanjiBusRelay``), with plain
sockets and :mod:`selectors` (no Twisted: the supervisor runs no reactor)::

    handle = start_relay("/run/hanji/bus.sock")   # workers get HANJI_BUS=unix:///run/hanji/bus.sock
    ...
    handle.stop()

Every worker connects to the unix socket (:mod:`hanji.server.bus.unix`) and sends
each message it publishes as a frame (see :mod:`._codec`). The relay numbers the
frames in the order it reads them and sends each one to every connected worker,
the sender included; workers deliver only what comes back, so every connection of
an endpoint sees the endpoint's messages in the relay's order, whichever worker
serves it.

A worker whose unsent frames pass ``max_backlog`` (it stopped reading) is
disconnected: it reconnects by itself and misses what was sent meanwhile, like a
restarted worker. The relay keeps nothing: no persistence, no replay.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import stat
import threading
from dataclasses import dataclass, field

from hanji.server.bus._codec import FrameError, FrameReader, pack_sequenced, unpack

__all__ = ["RelayHandle", "start_relay"]

log = logging.getLogger("hanji.bus")

DEFAULT_MAX_BACKLOG = 64 << 20  # bytes a worker may leave unread before it is dropped


@dataclass(eq=False)
class _Client:
    """One connected worker; owned by the relay thread."""

    sock: socket.socket
    reader: FrameReader = field(default_factory=FrameReader)
    out: bytearray = field(default_factory=bytearray)
    writing: bool = False


class RelayHandle:
    """A running relay: :meth:`stop` it; ``path`` is its socket. The counters are
    written by the relay thread and may be read from any thread."""

    def __init__(self, path: str, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self.path = path
        self.max_backlog = max_backlog
        self.sequence = 0  # frames relayed so far (the last sequence number)
        self.clients = 0  # workers connected now
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="HanjiBusRelay", daemon=True)

    # -- any thread -----------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the socket (its file is removed); return once
        the relay thread ended. Any thread; a second call does nothing."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> RelayHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start (caller's thread) -----------------------------------------------------

    def _start(self) -> None:
        _remove_stale_socket(self.path)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o600)  # the supervisor's user only, as its workers run
        self._listener.listen(128)
        self._listener.setblocking(False)
        self._thread.start()

    # -- the relay thread ---------------------------------------------------------------

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        clients: dict[socket.socket, _Client] = {}
        sel.register(self._listener, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while not self._stopping.is_set():
                for key, events in sel.select():
                    sock = key.fileobj
                    if sock is self._wake_r:
                        continue
                    if sock is self._listener:
                        self._accept(sel, clients)
                        continue
                    client = clients.get(sock)  # type: ignore[call-overload]
                    if client is None:
                        continue
                    if events & selectors.EVENT_WRITE:
                        self._flush(sel, clients, client)
                    if events & selectors.EVENT_READ and client.sock in clients:
                        self._read(sel, clients, client)
        except Exception:
            log.exception("The broadcast relay at %s failed; workers deliver locally only until it is "
                          "restarted.", self.path)
        finally:
            for client in list(clients.values()):
                client.sock.close()
            self.clients = 0
            sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _accept(self, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client]) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            clients[sock] = _Client(sock)
            sel.register(sock, selectors.EVENT_READ, None)
            self.clients = len(clients)

    def _drop(self, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client], client: _Client,
              why: str | None = None) -> None:
        if clients.pop(client.sock, None) is None:
            return
        if why:
            log.warning("Broadcast relay: dropping a worker connection (%s); it reconnects by itself.", why)
        try:
            sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        self.clients = len(clients)

    def _read(self, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client], client: _Client) -> None:
        try:
            data = client.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, clients, client)
            return
        try:
            payloads = client.reader.feed(data)
            for payload in payloads:
                unpack(payload)  # a well-formed frame, or the peer is not a Hanji worker
        except FrameError as exc:
            self._drop(sel, clients, client, f"malformed frame: {exc}")
            return
        for payload in payloads:
            self.sequence += 1
            frame = pack_sequenced(self.sequence, payload)
            for other in list(clients.values()):
                other.out += frame
                if len(other.out) > self.max_backlog:
                    self._drop(sel, clients, other, f"{len(other.out)} bytes unread, over {self.max_backlog}")
                elif not other.writing:
                    self._flush(sel, clients, other)

    def _flush(self, sel: selectors.BaseSelector, clients: dict[socket.socket, _Client], client: _Client) -> None:
        """Send what the kernel takes of ``client.out``; watch for writability while
        some is left."""
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(sel, clients, client)
            return
        del client.out[:sent]
        want_write = bool(client.out)
        if want_write != client.writing:
            client.writing = want_write
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            sel.modify(client.sock, mask, None)


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a relay that died, refusing to remove anything
    else or a socket some process still listens on."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, f"{path} exists and is not a socket; pick another bus path", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a leftover
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"a process already listens on {path}; pick another bus path", path)


def start_relay(path: str, *, max_backlog: int = DEFAULT_MAX_BACKLOG) -> RelayHandle:
    """Start a relay listening on the unix socket ``path`` in its own thread and
    return its handle; any thread (the supervisor's main thread).

    Raise OSError if ``path`` cannot be bound (another relay listens there, or the
    directory is missing)."""
    handle = RelayHandle(path, max_backlog)
    handle._start()
    log.info("Broadcast relay listening on %s.", path)
    return handle
