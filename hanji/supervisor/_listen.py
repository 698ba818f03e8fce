"""Bind the listening socket once, for every worker; supervisor process, main thread."""

from __future__ import annotations

import socket

# The kernel queues this many accepted-but-not-yet-taken connections while no worker
# accepts (one starting, one blocked): none is refused during a rolling restart.
BACKLOG = socket.SOMAXCONN


def bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket bound to ``host:port`` (port 0: any free one),
    inheritable by workers through ``pass_fds``. Raise OSError if it cannot bind."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As Twisted's listenTCP does on POSIX: rebind at once after a restart.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        # Workers share this open file (and its flags): a blocking accept() would
        # hang a worker's reactor whenever a sibling took the connection first.
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def url(host: str, sock: socket.socket) -> str:
    """Return the base URL the workers serve on ``sock`` (as HanjiServer.url says it)."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"
