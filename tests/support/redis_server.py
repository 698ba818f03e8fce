"""A throwaway ``redis-server`` (Debian's /usr/bin/redis-server) on a free port.

    with RedisServer(tmp_path) as redis:
        redis.url            # redis://127.0.0.1:<port>/0
        redis.stop()         # the port stays reserved for ...
        redis.start()        # ... the same server started again

No persistence (``--save ''``, no AOF), loopback only, its files in a directory
of its own. The test fails, not skips, when redis-server cannot start.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from support.net import can_connect, free_port
from support.polling import wait_until
from support.processes import stop_process

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` keep the port."""

    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        self.dir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="hanji-redis-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = self.dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """The URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start the server on :attr:`port` (again) and wait until it answers PING."""
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.dir), "--logfile", str(self.log_path), "--daemonize", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{self.log()}")
            return self.ping()

        wait_until(answers, timeout, lambda: f"redis-server on port {self.port} did not answer PING:\n{self.log()}")

    def ping(self) -> bool:
        """Return True if the server answers PING (a raw RESP exchange)."""
        if not can_connect(self.port, 1.0):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait until it exited."""
        proc, self.proc = self.proc, None
        stop_process(proc, timeout)

    def log(self) -> str:
        """Return the server's log so far."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
