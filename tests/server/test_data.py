"""Data: SQLite's WAL mode and busy timeout, no row lost to concurrent writers of every
kind, no database connection kept between Django jobs; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from support.kernels import Kernel
from support.paths import TEST_APPLETS
from support.polling import wait_until

VIEW_WRITERS, RESOURCE_WRITERS, CELL_WRITERS = 3, 3, 2
ROWS_EACH = 25
WAIT = 60.0  # a hang guard, not a timing assertion


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(start_server: Any) -> None:
    """The server's SQLite database is in WAL mode; its connections wait 20 s for a lock and begin IMMEDIATE."""
    srv = start_server([TEST_APPLETS])
    assert srv.post("/applets/ledger/write?writer=w").status == 200
    info = json.loads(srv.get("/applets/ledger/db").body)
    assert info == {"vendor": "sqlite", "journal_mode": "wal", "busy_timeout_ms": 20000,
                    "transaction_mode": "IMMEDIATE"}
    with sqlite3.connect(srv.data / "db.sqlite3") as conn:  # the file's own, persistent mode
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _http_writer(srv: Any, url: str, headers: dict[str, str], failures: list[str]) -> None:
    for _ in range(ROWS_EACH):
        answer = srv.post(url, headers=headers, timeout=WAIT)
        if answer.status != 200:
            failures.append(f"{url}: {answer.status} {answer.text[:300]}")


def test_concurrent_writers_lose_no_row(start_server: Any, database: dict[str, Any], tmp_path: Path) -> None:
    """Django views, Twisted resources (defer_to_django) and notebook cells writing at once leave exactly N x M rows."""
    srv = start_server([TEST_APPLETS], env=database["env"])
    kernels: list[Kernel] = []
    try:
        def boot(i: int) -> None:
            sub = tmp_path / f"kernel{i}"
            sub.mkdir()
            # The kernel's Hanji uses the server's database: its data dir (SQLite) or DATABASE_URL.
            k = Kernel(sub, {"HANJI_DATA": str(srv.data), **database["env"]}, applets=TEST_APPLETS)
            kernels.append(k)
            k.ok("%load_ext hanji\nfrom ledger.rows import write_row", timeout=120)

        booting = [threading.Thread(target=boot, args=(i,)) for i in range(CELL_WRITERS)]
        for t in booting:
            t.start()
        for t in booting:
            t.join(180)
        assert len(kernels) == CELL_WRITERS

        failures: list[str] = []
        start = threading.Barrier(VIEW_WRITERS + RESOURCE_WRITERS + CELL_WRITERS)
        cell_results: dict[int, Any] = {}

        def view_writer(i: int) -> None:
            start.wait()
            _http_writer(srv, f"/applets/ledger/write?writer=view{i}", {}, failures)

        def resource_writer(i: int) -> None:
            start.wait()
            _http_writer(srv, f"/res/ledger/write?writer=res{i}", {"Origin": srv.url}, failures)

        def cell_writer(i: int) -> None:
            start.wait()
            cell_results[i] = kernels[i].run(
                f"seqs = [write_row('cell{i}') for _ in range({ROWS_EACH})]\nprint(seqs == list(range({ROWS_EACH})))",
                timeout=300)

        writers = ([threading.Thread(target=view_writer, args=(i,)) for i in range(VIEW_WRITERS)]
                   + [threading.Thread(target=resource_writer, args=(i,)) for i in range(RESOURCE_WRITERS)]
                   + [threading.Thread(target=cell_writer, args=(i,)) for i in range(CELL_WRITERS)])
        began = time.monotonic()
        for t in writers:
            t.start()
        for t in writers:
            t.join(360)
        elapsed = time.monotonic() - began
        assert not any(t.is_alive() for t in writers), "a writer hung"
    finally:
        for k in kernels:
            k.shutdown()

    assert failures == [], failures[:5]
    for i, result in cell_results.items():
        assert result.ok and result.stdout.strip() == "True", result
    writers_total = VIEW_WRITERS + RESOURCE_WRITERS + CELL_WRITERS
    counted = json.loads(srv.get("/applets/ledger/count").body)
    print(f"\n[{database['backend']}] {writers_total} writers x {ROWS_EACH} rows: "
          f"{counted['total']} rows in {elapsed:.1f} s")
    assert counted["total"] == writers_total * ROWS_EACH
    assert len(counted["per_writer"]) == writers_total
    assert all(seqs == list(range(ROWS_EACH)) for seqs in counted["per_writer"].values()), counted


def _open_connections(srv: Any, database: dict[str, Any]) -> int:
    """Return how many database connections the server process holds."""
    if database["backend"] == "postgres":
        return int(database["cluster"].connections_to(database["name"]))
    fd_dir = Path(f"/proc/{srv.proc.pid}/fd")
    files = []
    for fd in os.listdir(fd_dir):
        try:
            files.append(os.readlink(fd_dir / fd))
        except OSError:
            pass  # closed meanwhile
    return sum(1 for f in files if f.endswith("db.sqlite3"))


def _settle_at_zero(srv: Any, database: dict[str, Any]) -> None:
    """Wait until the server holds no database connection; fail after 10 s (a hang guard)."""
    wait_until(lambda: _open_connections(srv, database) == 0, 10,
               lambda: f"the server still holds {_open_connections(srv, database)} database connection(s)",
               interval=0.1)


def test_django_jobs_keep_no_connection(start_server: Any, database: dict[str, Any]) -> None:
    """on_activate, defer_to_django jobs and views close their database connection when done, as Django does per request."""
    srv = start_server([TEST_APPLETS], env=database["env"])
    # ledger's on_activate read the table in a Django worker at start-up.
    _settle_at_zero(srv, database)
    assert srv.post("/res/ledger/write?writer=job", headers={"Origin": srv.url}).status == 200
    assert srv.post("/applets/ledger/write?writer=view").status == 200
    _settle_at_zero(srv, database)
    assert json.loads(srv.get("/applets/ledger/count").body)["total"] == 2

