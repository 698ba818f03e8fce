"""Shared fixtures: a real ``hanji serve`` process on an ephemeral port (tests/support/server.py)
and a throwaway PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.paths import APPLETS, TEST_APPLETS
from support.server import ServerProcess

# Debug mode (thread checks, tracebacks in 500 pages) is on in the tests, as in a
# notebook: every `hanji serve` and kernel started here inherits it. A test of the
# default of `hanji serve` passes env={"HANJI_DEBUG": "0"}.
os.environ.setdefault("HANJI_DEBUG", "1")


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
    """One shared server with the example applets and the test applets (debug mode, as
    every server of the suite: HANJI_DEBUG=1 above)."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server"), [APPLETS, TEST_APPLETS])
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL server for the session (tests/support/postgres_cluster.py).

    It fails, not skips, when PostgreSQL cannot start; ``HANJI_TEST_POSTGRES=0``
    skips the PostgreSQL variants explicitly.
    """
    if os.environ.get("HANJI_TEST_POSTGRES", "1") in ("0", "false", "no"):
        pytest.skip("PostgreSQL variants disabled by HANJI_TEST_POSTGRES=0")
    from support.postgres_cluster import Cluster

    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The database a test's servers and kernels share: ``{"backend", "env", "name"}``.

    ``env`` is ``{}`` for SQLite (the data dir's file) or sets ``DATABASE_URL`` to a
    fresh PostgreSQL database of its own.
    """
    if request.param == "sqlite":
        return {"backend": "sqlite", "env": {}, "name": None}
    cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    return {"backend": "postgres", "env": {"DATABASE_URL": cluster.url(name)}, "name": name, "cluster": cluster}
