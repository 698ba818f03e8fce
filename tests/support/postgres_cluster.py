"""A throwaway PostgreSQL cluster for the data tests (see the ``database`` fixture).

Debian's ``postgresql`` package (``make postgres-deps`` installs it) provides
``initdb`` and ``pg_ctl``; the cluster lives in a temporary directory, listens on
127.0.0.1 on a free port, trusts local connections and is removed at the end of the
session. initdb refuses to run as root, so as root the cluster belongs to the
``postgres`` user. Each test gets its own database (:meth:`Cluster.create_database`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from support.net import free_port


def _bindir() -> Path:
    """Return the directory of initdb and pg_ctl; raise RuntimeError if there is none."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL is not installed: run `make postgres-deps` (apt-get install postgresql), "
                       "or set HANJI_TEST_POSTGRES=0 to skip the PostgreSQL variants of the data tests.")


class Cluster:
    """A running PostgreSQL server on 127.0.0.1:``port`` with superuser ``postgres``."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="hanji-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = 0
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        for attempt in range(5):  # another process may take the free port first
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60",
                          "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                                "-c fsync=off -c max_connections=200", "start")
                return
            except RuntimeError:
                if attempt == 4:
                    raise

    def _run(self, tool: str, *args: str) -> str:
        cmd = [str(self.bindir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if out.returncode != 0:
            log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}\n{log}")
        return out.stdout

    def url(self, dbname: str) -> str:
        """Return the DATABASE_URL of database ``dbname``."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        """Return an autocommit psycopg connection to ``dbname``."""
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def create_database(self) -> str:
        """Create a fresh database and return its name."""
        name = f"hanji_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def connections_to(self, dbname: str) -> int:
        """Return how many client backends are connected to ``dbname``."""
        with self.connect() as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                               "AND backend_type = 'client backend'", (dbname,)).fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
