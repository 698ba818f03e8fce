"""Shared fixtures: a real ``hanji serve`` process on an ephemeral port."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from server_process import APPLETS, TEST_APPLETS, ServerProcess


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """Return a function that starts a server (stopped at the end of the test)."""
    started: list[ServerProcess] = []

    def start(applet_dirs: list[Path] | None = None, args: list[str] = (), env: dict[str, str] | None = None) -> ServerProcess:
        sub = tmp_path / f"server{len(started)}"
        sub.mkdir()
        server = ServerProcess(sub, applet_dirs if applet_dirs is not None else [APPLETS, TEST_APPLETS], args, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared server with the example applets and the test applets."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server"), [APPLETS, TEST_APPLETS], ["--debug"])
    yield proc
    proc.stop()
