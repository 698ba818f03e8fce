"""The requests this kernel made to its applets with ``hanji.get``/``hanji.post``
(``hanji.request`` and the awaitable twins too), kept for ``hanji.export(verify=True)``,
which replays them against the exported package; cell thread.

Each exchange is kept with the applet it addressed (``/res/<id>/…``, ``/ws/<id>/…``
or the applet's Django prefix, ``/applets/<id>/…`` by default) and the version of
that applet which answered, so that only the answers of the code being exported are
replayed: requests made before the last re-activation answered older code. The log
is bounded (the last :data:`LIMIT` exchanges).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from typing import Any

log = logging.getLogger("hanji")

LIMIT = 1000

_lock = threading.Lock()
_log: collections.deque[Exchange] = collections.deque(maxlen=LIMIT)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request sent from the notebook and the answer it got."""

    applet_id: str
    version: int
    method: str
    path: str  # with the query string, percent-encoded
    headers: dict[str, list[str]]  # as sent, the access token header excluded
    body: bytes | None
    status: int
    content: bytes


def _applet_of(server: Any, path: str) -> tuple[str, int] | None:
    """Return ``(applet id, version)`` of the active applet ``path`` addresses, or
    None; any thread (reads a registry snapshot)."""
    bare = path.split("?", 1)[0]
    records = server.registry.snapshot()
    for prefix in ("/res/", "/ws/"):
        if bare.startswith(prefix):
            applet_id = bare[len(prefix):].split("/", 1)[0]
            record = records.get(applet_id)
            return (applet_id, record.version) if record is not None else None
    for record in records.values():
        if record.urls_module is not None and record.url_prefix and bare.startswith("/" + record.url_prefix):
            return record.id, record.version
    return None


def note(session: Any, prepared: Any, response: Any) -> None:
    """Keep one finished exchange if it addressed an applet; cell thread (never raises:
    the request itself succeeded, only its replay by ``verify=True`` is lost)."""
    try:
        found = _applet_of(session.server, prepared.path)
    except Exception:
        log.debug("%s %s is not kept for hanji.export(verify=True).", prepared.method, prepared.path,
                  exc_info=True)
        return
    if found is None:
        return
    headers = {k: list(v) for k, v in prepared.headers.items() if k.lower() != "x-hanji-token"}
    with _lock:
        _log.append(Exchange(found[0], found[1], prepared.method, prepared.path, headers,
                             prepared.body, response.status, bytes(response.content)))


def exchanges(applet_id: str, version: int | None = None) -> list[Exchange]:
    """Return the exchanges with ``applet_id`` (of one ``version`` if given), oldest
    first; any thread."""
    with _lock:
        return [e for e in _log if e.applet_id == applet_id and (version is None or e.version == version)]


def clear() -> None:
    """Forget every exchange; any thread."""
    with _lock:
        _log.clear()
