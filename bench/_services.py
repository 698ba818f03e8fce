"""A throwaway redis-server for figure 10 (the Redis bus), started and stopped by its own pid.

Runs in the harness process. Debian's /usr/bin/redis-server on a free loopback port, no
persistence, its directory under bench/raw/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from _harness import RAW
from support.net import free_port


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port``; ``url`` is what ``hanji serve --bus`` takes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = RAW / f"redis-{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None or Path("/usr/bin/redis-server").exists()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._log = open(self.dir / "redis.log", "wb")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} (see {self.dir / 'redis.log'})")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {timeout:g} s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            self._log.close()
        self.proc = None
