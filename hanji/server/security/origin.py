"""Same-origin checks for websocket handshakes and unsafe methods; reactor thread
(pure functions of the request's headers).

The server's own origin is the host (and port) the client asked for: the
``X-Forwarded-Host`` of a reverse proxy, else ``Host``. If it names no port, only host
names are compared (behind a TLS-terminating proxy Hanji cannot know the client's
scheme) unless ``X-Forwarded-Proto`` gives the scheme; an explicit port must match the
Origin's. Used by the websocket endpoints (:mod:`hanji.server.websocket.endpoint`) and
the CSRF check (:mod:`hanji.server.security.csrf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    try:
        parts = urlsplit("//" + netloc)
        return (parts.hostname or "").lower(), parts.port or default_port
    except ValueError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def _first(request: Any, name: bytes) -> str | None:
    """Return the first entry of a header that proxies may have made a
    comma-separated list (``X-Forwarded-Host: outer, inner``), or None."""
    value = request.getHeader(name)
    if not value:
        return None
    return value.decode("latin-1").split(",")[0].strip() or None


def _own_host(request: Any) -> tuple[str, int | None] | None:
    """Return the host name and port under which the client reached the server, the
    port None when the client's URL had none, or None for a garbled header.

    A reverse proxy's ``X-Forwarded-Host`` wins over ``Host``, which names the proxy's
    upstream. When it names no port, the client's scheme would tell the default, but
    Hanji behind a TLS-terminating proxy sees plain HTTP: only ``X-Forwarded-Proto``
    says which, and without it the port stays unknown (None).
    """
    host = _first(request, b"x-forwarded-host") or _first(request, b"host")
    if host is None:
        address = request.getHost()
        return str(address.host).lower(), address.port
    try:
        parts = urlsplit("//" + host)
        name, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if port is None:
        proto = (_first(request, b"x-forwarded-proto") or "").lower()
        if proto in ("http", "https", "ws", "wss"):
            port = _default_port(proto)
    return name, port


def origin_allowed(request: Any, allowed: Sequence[str]) -> bool:
    """Return True if the request's Origin is absent (a non-browser client), is the
    server's own, or is in ``allowed``: ``"*"``, ``"https://host[:port]"``,
    ``"host:port"`` or a bare ``"host"`` (any port).

    The server's own origin is the host (and port) the client asked for: the
    ``X-Forwarded-Host`` of a reverse proxy, else ``Host``. If it names no port,
    only host names are compared (behind a TLS-terminating proxy Hanji cannot
    know the client's scheme) unless ``X-Forwarded-Proto`` gives the scheme; an
    explicit port must match the Origin's.
    """
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    return same_origin(request, origin.decode("latin-1"), allowed)


def same_origin(request: Any, origin: str, allowed: Sequence[str] = ()) -> bool:
    """Return True if ``origin`` (``scheme://host[:port]``) is the server's own, as
    :func:`origin_allowed` defines it, or in ``allowed``; pure."""
    origin = origin.strip()
    if "*" in allowed or origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False  # e.g. "http://[::1" (a broken IPv6 literal)
    theirs = _host_port(parts.netloc, _default_port(parts.scheme)) if parts.netloc else None
    if theirs is None:
        return False  # "null" (file:// pages, sandboxed frames) or garbage
    for entry in allowed:
        if "://" in entry:
            e = urlsplit(entry)
            if e.scheme == parts.scheme and _host_port(e.netloc, _default_port(e.scheme)) == theirs:
                return True
        elif ":" in entry:
            if _host_port(entry, -1) == theirs:
                return True
        elif entry.lower() == theirs[0]:
            return True
    own = _own_host(request)
    if own is None or not own[0]:
        return False
    name, port = own
    return name == theirs[0] and (port is None or port == theirs[1])
