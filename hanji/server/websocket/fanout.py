"""Sending one message to many websocket connections at once; reactor thread only.

Twisted's ``FileDescriptor.write`` only appends to a buffer: the bytes reach the
kernel when the reactor next finds the socket writable (``doWrite``), that is after
the broadcast loop has returned. With 1,000 connections the first client waited for
the whole loop (14 ms) before a byte left. Here the frame is built once (a server's
frames are not masked and Twisted negotiates no extension, so every connection gets
the same bytes) and handed to the kernel at once on every connection whose output
buffer is empty (:func:`write_now`); a connection with unsent output (a slow reader)
gets it queued behind that output, as before, so it costs the others one list
append. The per-connection bounds of :meth:`~hanji.server.websocket.link.Link.admit`
(``max_send_buffer``, close 1013) apply unchanged.

:func:`write_now` reads the unsent count of Twisted's ``FileDescriptor`` through
:func:`hanji._compat.transport_unsent` (the one seam for Twisted's internals, checked
by ``hanji._compat.missing()``) and sends on ``tcp.Connection.socket``: a transport
that lacks them (TLS, a test's StringTransport) gets a plain ``write``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from wsproto.connection import ConnectionState
from wsproto.frame_protocol import FrameProtocol

from hanji import _compat

if TYPE_CHECKING:
    from hanji.server.websocket.link import Link

__all__ = ["frame_of", "send_to_all", "write_now"]


def frame_of(data: str | bytes) -> bytes:
    """Return the wire frame of one whole unmasked server message without extensions
    (a text frame for str, binary for bytes); any thread."""
    return bytes(FrameProtocol(client=False, extensions=[]).send_data(data, True))


def _idle_socket(transport: Any) -> Any:
    """Return the socket of ``transport`` if it is a connected TCP transport with no
    unsent output (bytes written now would not overtake earlier ones), else None."""
    try:
        if transport.connected and not transport.disconnecting and not _compat.transport_unsent(transport):
            return transport.socket
    except AttributeError:
        pass
    return None


def write_now(transport: Any, data: bytes) -> None:
    """Write ``data`` to ``transport``, handing it to the kernel now when nothing
    waits before it (what the kernel does not take is buffered as by ``write``);
    reactor thread. Any other transport gets ``transport.write(data)``."""
    sock = _idle_socket(transport)
    if sock is not None:
        try:
            sent = sock.send(data)
        except OSError:
            # EWOULDBLOCK or ENOBUFS: buffered below. Any other error: write()
            # leaves the bytes to the reactor's doWrite, which meets the same error
            # and drops the connection the usual way.
            sent = 0
        if sent >= len(data):
            return
        if sent:
            data = data[sent:]
    transport.write(data)


def send_to_all(links: Iterable[Link], data: str | bytes) -> int:
    """Send ``data`` to every link, in order, the writes starting as the loop goes;
    return how many links took it. Reactor thread.

    The loop is the hot path of a broadcast (1,000 connections: 1,000 ``send``
    system calls and this): the common case is kept to a few attribute reads.
    """
    frame: bytes | None = None
    size = len(data)
    taken = 0
    open_state = ConnectionState.OPEN
    for link in links:
        conn, wire = link.conn, link.wire
        if conn is None or wire is None or conn.state is not open_state:
            taken += int(bool(link.send_now(data)))
            continue
        if (link.congested or link.closing or not link.is_open) and not link.admit(size):
            continue
        if frame is None:
            frame = frame_of(data)
        write_now(wire.transport, frame)
        taken += 1
    return taken

