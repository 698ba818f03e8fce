"""``hanji serve --workers N`` seen from a test: the worker processes of a supervisor
(``/proc/<pid>/task/*/children``), whether a process is gone, which process holds
the beacon test applet's fixed port, and a bounded load loop that counts failed
requests and refused connections.

The load loop's keep-alive clients follow the rule of HTTP/1.1 (RFC 9112, 9.3.1) that
browsers and urllib3 follow: a request sent on a reused connection that the server
closed before any byte of an answer is retried once on a new connection. Such
retries are counted apart (a worker that drains closes its idle connections); any
other error, a refused connection or a status other than 200 is a failure.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.polling import wait_until


def children(pid: int) -> set[int]:
    """Return the pids of the live child processes of ``pid`` (empty once it is gone)."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return {p for p in found if alive(p)}


def alive(pid: int) -> bool:
    """Return True if process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def beacon_pid(port: int) -> int:
    """Return the process id that the beacon test applet's fixed ``port`` answers
    with (tests/applets/placement), 0 if no process listens there."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return int(s.makefile().readline().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_for_workers(supervisor_pid: int, count: int, log: Callable[[], str], timeout: float = 60.0,
                     without: Collection[int] = ()) -> set[int]:
    """Wait until ``supervisor_pid`` has exactly ``count`` worker processes, none of
    them in ``without``, each of which said it is ready in the log; return their pids."""

    def settled() -> set[int]:
        pids = children(supervisor_pid)
        if len(pids) != count or pids & set(without):
            return set()
        text = log()
        return pids if all(f"(pid {pid}) ready." in text for pid in pids) else set()

    return wait_until(settled, timeout, lambda: f"{count} ready workers (now {children(supervisor_pid)}):\n{log()}")


@dataclasses.dataclass
class LoadResult:
    """What a load loop saw."""

    ok: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    refused: int = 0
    retried: int = 0  # keep-alive requests retried on a new connection (closed before any answer)
    pids: Counter[str] = dataclasses.field(default_factory=Counter)


class LoadLoop:
    """Client threads requesting ``path`` until stopped: ``keepalive`` threads on one
    persistent connection each, ``fresh`` threads on a new connection per request."""

    def __init__(self, url: str, path: str, keepalive: int = 2, fresh: int = 2,
                 headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", int(parts.port or 80)
        self.path = path
        self.headers = headers or {}
        self.timeout = timeout
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(True,), daemon=True) for _ in range(keepalive)]
        self._threads += [threading.Thread(target=self._run, args=(False,), daemon=True) for _ in range(fresh)]

    def __enter__(self) -> LoadLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        """Stop the clients (each finishes its request) and return what they saw."""
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.result

    def wait_requests(self, n: int, timeout: float = 60.0) -> None:
        """Wait until ``n`` more requests succeeded than when called."""
        start = self.result.ok
        wait_until(lambda: self.result.ok >= start + n, timeout,
                   lambda: f"{n} more requests (ok {self.result.ok}, failures {self.result.failures[:5]})")

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _record(self, status: int, body: bytes) -> None:
        with self._lock:
            if status == 200:
                self.result.ok += 1
                self.result.pids[body.decode()] += 1
            else:
                self.result.failures.append(f"status {status}: {body[:200]!r}")

    def _fail(self, what: str) -> None:
        with self._lock:
            self.result.failures.append(what)

    def _exchange(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        conn.request("GET", self.path, headers=self.headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def _send(self, conn: http.client.HTTPConnection, what: str,
              retryable: tuple[type[BaseException], ...] = ()) -> tuple[int, bytes] | None:
        """Return the answer to one request on ``conn``; on an error other than
        ``retryable`` (raised), record a failure, close ``conn`` and return None."""
        try:
            return self._exchange(conn)
        except retryable:
            raise
        except ConnectionRefusedError as exc:
            with self._lock:
                self.result.refused += 1
            self._fail(f"refused ({what}): {exc}")
            time.sleep(0.01)
        except Exception as exc:
            self._fail(f"{what}: {exc!r}")
        conn.close()
        return None

    def _run(self, keepalive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            reused = keepalive and conn is not None
            if not reused:
                if conn is not None:
                    conn.close()
                conn = self._connection()
            assert conn is not None
            closed = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
            try:
                answer = self._send(conn, "reused connection" if reused else "fresh connection",
                                    closed if reused else ())
            except closed:
                # Closed by the server before any answer: retry once, as HTTP allows.
                conn.close()
                with self._lock:
                    self.result.retried += 1
                conn = self._connection()
                answer = self._send(conn, "retry")
            if answer is None:
                conn = None
                continue
            self._record(*answer)
        if conn is not None:
            conn.close()
