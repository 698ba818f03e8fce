"""A throwaway HAProxy in front of several servers, for the several-hosts tests.

Debian's ``haproxy`` (``make test`` installs it) runs in the foreground (``-db``)
with a generated configuration: one HTTP frontend on a free port of 127.0.0.1,
round-robin over the given backends, no sticky sessions, websockets passed through
(HAProxy's HTTP mode handles the Upgrade). It is stopped at the end of the test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from support.net import can_connect, free_port
from support.polling import wait_until
from support.processes import stop_process

HAPROXY = "/usr/sbin/haproxy"

_CONFIG = """\
global
    maxconn 1000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 300s

frontend site
    bind 127.0.0.1:{port}
    default_backend hanji

backend hanji
    balance roundrobin
{servers}
"""


class HAProxy:
    """HAProxy on 127.0.0.1:``port``, spreading requests over ``backends``
    (``(host, port)`` pairs) round-robin, with no stickiness."""

    def __init__(self, tmp: Path, backends: Sequence[tuple[str, int]]) -> None:
        binary = HAPROXY if Path(HAPROXY).exists() else shutil.which("haproxy")
        if not binary:
            raise RuntimeError("HAProxy is not installed: `make test` installs Debian's haproxy "
                               "(apt-get install haproxy).")
        self.config = tmp / "haproxy.cfg"
        self.log_path = tmp / "haproxy.log"
        servers = "\n".join(f"    server s{i} {host}:{port}" for i, (host, port) in enumerate(backends))
        for attempt in range(5):  # another process may take the free port first
            self.port = free_port()
            self.config.write_text(_CONFIG.format(port=self.port, servers=servers))
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen([binary, "-f", str(self.config), "-db"],
                                         stdout=self._log, stderr=subprocess.STDOUT)

            def up() -> bool:
                if self.proc.poll() is not None:
                    return True
                return can_connect(self.port, timeout=1)

            wait_until(up, 30, lambda: f"HAProxy did not listen on {self.port}:\n{self.log}")
            if self.proc.poll() is None:
                return
            self._log.close()
            if attempt == 4:
                raise RuntimeError(f"HAProxy exited with {self.proc.returncode}:\n{self.log}")

    @property
    def url(self) -> str:
        """The base URL HAProxy answers on."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What HAProxy wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop HAProxy."""
        stop_process(self.proc)
        self._log.close()
