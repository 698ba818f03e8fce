"""``hanji serve --workers N``: a supervisor, N worker processes on one socket (real processes).

The test applet ``tests/applets/workers/workerpid`` answers with the pid of the worker
that served the request; the supervisor's workers are its child processes in /proc.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from support.http import request
from support.paths import ROOT
from support.polling import wait_until
from support.server import ServerProcess
from support.workers import LoadLoop, alive, children, wait_for_workers

WORKER_APPLETS = ROOT / "tests" / "applets" / "workers"
PID = "/res/workerpid/pid"


def start(start_server: Any, workers: int = 2, *extra: str, migrate: bool = False) -> ServerProcess:
    """Start ``hanji serve --workers N`` with the worker test applet only (its resources
    need no table: without the migrations unless ``migrate``, a faster start)."""
    return start_server([WORKER_APPLETS], ["--workers", str(workers), *extra, *(() if migrate else ("--no-migrate",))])


def pids_seen(server: ServerProcess, wanted: set[int], tries: int = 400) -> set[int]:
    """Return the worker pids that answered fresh-connection requests, stopping once
    all of ``wanted`` answered (or after ``tries`` requests)."""
    seen: set[int] = set()
    for _ in range(tries):
        answer = server.get(PID)
        assert answer.status == 200, answer
        seen.add(int(answer.text))
        if seen >= wanted:
            break
    return seen


def test_two_workers_serve_one_socket_with_one_token(start_server: Any) -> None:
    """--workers 2 runs two worker processes under the supervisor, both answer on the one
    port (Twisted resource and Django view) with the one token the supervisor picked (off
    loopback), each with HANJI_SUPERVISOR_PID and its HANJI_WORKER_ID, and the banner and
    hanji.log name each pid."""
    server = start(start_server, 2, "--host", "0.0.0.0", migrate=True)
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    assert server.pid not in workers
    assert server.token
    assert pids_seen(server, workers) == workers  # every worker accepts the token
    assert server.get(PID, headers={}).status in (401, 403)
    envs: dict[int, tuple[int, int]] = {}
    for _ in range(400):
        pid, supervisor, worker_id = (int(v) for v in server.get("/res/workerpid/env").text.split())
        envs[pid] = (supervisor, worker_id)
        if len(envs) == 2:
            break
    assert sorted(envs.values()) == [(server.pid, 1), (server.pid, 2)]
    django = server.get("/applets/workerpid/")
    assert django.status == 200 and int(django.text) in workers
    banner = [line for line in server.log.splitlines() if line.startswith("Hanji serves")]
    assert banner and all(str(pid) in banner[0] for pid in workers), server.log
    for pid in workers:
        assert f"(pid {pid}) serves {server.url}/" in server.log
    hanji_log = (server.data / "hanji.log").read_text()
    for pid in workers:
        assert f" {pid} INFO hanji.server " in hanji_log
    assert f" {server.pid} INFO hanji.supervisor " in hanji_log
    assert hanji_log.count("Migrations applied, once for all workers.") == 1


def _answers_by_worker(server: ServerProcess, path: str, workers: set[int]) -> dict[int, str]:
    """Return ``{pid: text}`` of answers ``"pid text"`` to ``path`` on fresh
    connections, once every worker of ``workers`` answered; each must be a 200."""
    got: dict[int, str] = {}
    for _ in range(400):
        answer = server.get(path)
        assert answer.status == 200, answer
        pid, _, text = answer.text.partition(" ")
        got[int(pid)] = text
        if set(got) >= workers:
            break
    assert set(got) == workers, got
    return got


def test_workers_share_a_secret_key_kept_in_the_data_dir_across_restarts(
        start_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HANJI_SECRET_KEY the supervisor makes one key in the data dir (mode
    0600): what either worker signs, both accept, and a later single-process server
    on that data dir still does (sessions and CSRF tokens survive a restart)."""
    monkeypatch.delenv("HANJI_SECRET_KEY", raising=False)
    data = tmp_path / "shared-data"
    server = start(start_server, 2, "--data", str(data))
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    key_file = data / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text()
    assert len(key.strip()) >= 50 and f"the one kept in {key_file}" in server.log
    signed = _answers_by_worker(server, "/res/workerpid/sign", workers)
    for value in signed.values():
        assert set(_answers_by_worker(server, f"/res/workerpid/unsign?value={value}", workers).values()) == {"hanji"}
    assert server.stop() == 0
    single = start_server([WORKER_APPLETS], ["--no-migrate", "--data", str(data)])
    for value in signed.values():
        assert single.get(f"/res/workerpid/unsign?value={value}").text == f"{single.pid} hanji"
    forged = single.get("/res/workerpid/unsign?value=" + signed[min(signed)][:-2] + "xx")
    assert forged.status == 400
    assert key_file.read_text() == key


def test_the_secret_key_file_is_made_once_by_racing_processes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes that start at once on a data dir without a key all read the one key
    that the first of them linked into place, complete; HANJI_SECRET_KEY, when set,
    wins and makes no file."""
    from hanji import _config

    script = "import sys; from pathlib import Path; from hanji import _secretfile; " \
             "print(_secretfile.load_or_create(Path(sys.argv[1])))"
    data = tmp_path / "data"
    racers = [subprocess.Popen([sys.executable, "-c", script, str(data)], stdout=subprocess.PIPE, text=True)
              for _ in range(6)]
    keys = {proc.communicate(timeout=60)[0].strip() for proc in racers}
    assert all(proc.returncode == 0 for proc in racers)
    assert len(keys) == 1 and keys == {(data / "secret_key").read_text().strip()}
    assert [f.name for f in data.iterdir()] == ["secret_key"]  # no temporary file left
    monkeypatch.setenv("HANJI_DATA", str(tmp_path / "other"))
    monkeypatch.setenv("HANJI_SECRET_KEY", "from-the-environment")
    assert _config.secret_key() == "from-the-environment" and not (tmp_path / "other").exists()
    monkeypatch.delenv("HANJI_SECRET_KEY")
    assert _config.secret_key() == (tmp_path / "other" / "secret_key").read_text().strip()


def test_a_bad_lease_ttl_is_a_usage_error(tmp_path: Path) -> None:
    """A HANJI_LEASE_TTL that is not a positive number ends `hanji serve` (with or
    without --workers) with one line naming the variable and status 2, no traceback."""
    for value, workers in (("soon", []), ("-3", ["--workers", "2"])):
        done = subprocess.run([sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(tmp_path / "d"),
                               "--applets", str(WORKER_APPLETS), *workers], capture_output=True, text=True,
                              env=dict(os.environ, HANJI_LEASE_TTL=value), cwd=tmp_path, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("hanji serve: HANJI_LEASE_TTL="), done.stderr


def test_killed_worker_is_replaced_while_the_other_serves(start_server: Any) -> None:
    """kill -9 of a worker: its sibling's connections keep being answered, fresh
    connections are too, and a new worker takes its place."""
    server = start(start_server, 2)
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    # Keep-alive connections until some sit on each worker.
    import http.client

    conns: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    port = int(server.url.rsplit(":", 1)[1])

    def ask(conn: http.client.HTTPConnection) -> int:
        conn.request("GET", PID)
        resp = conn.getresponse()
        assert resp.status == 200
        return int(resp.read())

    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conns[ask(conn)].append(conn)
        if all(conns.values()):
            break
    assert all(conns.values()), {pid: len(c) for pid, c in conns.items()}
    victim, survivor = sorted(workers)
    with LoadLoop(server.url, PID, keepalive=0, fresh=2) as load:
        load.wait_requests(20)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not alive(victim), 30, "the killed worker to go")
        for _ in range(20):
            for conn in conns[survivor]:
                assert ask(conn) == survivor
        new = wait_for_workers(server.pid, 2, lambda: server.log, without={victim})
        load.wait_requests(20)
    result = load.result
    assert survivor in new and victim not in new
    assert "(pid %d) was killed by SIGKILL; another starts" % victim in server.log
    # Fresh connections: at most those the killed worker had accepted failed.
    assert result.refused == 0, result.failures
    assert len(result.failures) <= 2, result.failures
    for conn in conns[victim] + conns[survivor]:
        conn.close()


def test_sighup_is_a_rolling_restart_without_failures(start_server: Any) -> None:
    """SIGHUP replaces every worker, each new one ready before an old one stops, while
    a bounded load runs (keep-alive and fresh connections, quick and 150 ms requests):
    no failed request, no refused connection."""
    server = start(start_server, 2)
    old = wait_for_workers(server.pid, 2, lambda: server.log)
    quick = LoadLoop(server.url, PID, keepalive=2, fresh=2)
    slow = LoadLoop(server.url, "/res/workerpid/slow?ms=150", keepalive=1, fresh=1)
    with quick, slow:
        quick.wait_requests(50)
        os.kill(server.pid, signal.SIGHUP)
        new = wait_for_workers(server.pid, 2, lambda: server.log, without=old, timeout=90)
        quick.wait_requests(50)
        slow.wait_requests(5)
    for result in (quick.result, slow.result):
        assert result.failures == [] and result.refused == 0, (result, server.log)
    assert {int(p) for p in quick.result.pids} >= new
    assert not any(alive(pid) for pid in old)
    for pid in old:
        assert f"(pid {pid}) exited with code 0 (replaced)" in server.log
    assert "SIGHUP: rolling restart of 2 worker(s)" in server.log
    # Rolling: the k-th new worker was ready before the k-th old one stopped listening.
    lines = server.log.splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    readies = sorted(first(f"(pid {pid}) ready.") for pid in new)
    stops = sorted(first(f"(pid {pid}) drains and stops (replaced)") for pid in old)
    assert all(ready < stop for ready, stop in zip(readies, stops)), "\n".join(lines[min(readies + stops):])


def test_sigterm_drains_and_leaves_no_process(start_server: Any) -> None:
    """SIGTERM lets a request in flight finish (each worker drains), then the
    supervisor exits 0 and no worker process is left."""
    server = start(start_server, 2)
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(request(server.url + "/res/workerpid/slow?ms=1500")))
    thread.start()
    wait_until(lambda: "slow request started" in server.log, 30, lambda: f"the slow request:\n{server.log}")
    assert server.stop(signal.SIGTERM) == 0, server.log
    thread.join(30)
    assert answers and answers[0].status == 200, (answers, server.log)
    assert int(answers[0].text) in workers
    assert not any(alive(pid) for pid in workers), server.log
    assert "Hanji stopped (supervisor pid" in server.log


def test_blocked_reactor_misses_heartbeats_and_is_replaced(start_server: Any) -> None:
    """A worker whose reactor is blocked (time.sleep in a resource) sends no heartbeat:
    after --worker-timeout the supervisor dumps its stacks, kills it and starts another."""
    server = start(start_server, 2, "--worker-timeout", "3")
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    blocked: list[Any] = []
    thread = threading.Thread(target=lambda: blocked.append(_try(server.url + "/res/workerpid/block?s=120")),
                              daemon=True)
    thread.start()
    line = wait_until(lambda: next((ln for ln in server.log.splitlines() if "sent no heartbeat" in ln), ""),
                      60, lambda: f"the heartbeat timeout:\n{server.log}")
    victim = next(pid for pid in workers if f"(pid {pid}) sent no heartbeat" in line)
    wait_until(lambda: not alive(victim), 30, "the blocked worker to be killed")
    new = wait_for_workers(server.pid, 2, lambda: server.log, without={victim})
    assert new - workers
    assert re.search(r"workerpid/__init__.py\", line \d+ in render_GET", server.log), server.log  # faulthandler
    assert f"(pid {victim}) was killed by SIGKILL (no heartbeat" in server.log
    thread.join(30)
    assert pids_seen(server, new) == new


def _try(url: str) -> Any:
    try:
        return request(url, timeout=60)
    except Exception as exc:
        return exc


def test_sigttin_and_sigttou_change_the_worker_count(start_server: Any) -> None:
    """SIGTTIN adds a worker and SIGTTOU removes one (the oldest drains and exits)."""
    server = start(start_server, 1)
    (first,) = wait_for_workers(server.pid, 1, lambda: server.log)
    os.kill(server.pid, signal.SIGTTIN)
    wait_for_workers(server.pid, 2, lambda: server.log)
    os.kill(server.pid, signal.SIGTTIN)
    three = wait_for_workers(server.pid, 3, lambda: server.log)
    assert pids_seen(server, three, tries=1000) == three
    os.kill(server.pid, signal.SIGTTOU)
    two = wait_for_workers(server.pid, 2, lambda: server.log)
    assert first not in two and two < three
    wait_until(lambda: f"(pid {first}) exited with code 0 (one worker less wanted)" in server.log, 30,
               lambda: f"the oldest worker's exit in the log:\n{server.log}")


def test_no_migrate_and_the_default_single_process(start_server: Any, tmp_path: Path) -> None:
    """Without --workers there is no supervisor (one process, as before); --no-migrate
    leaves a fresh database untouched, and `hanji manage migrate` is the separate step."""
    server = start_server([WORKER_APPLETS], ["--no-migrate"])
    assert children(server.pid) == set()
    assert int(server.get(PID).text) == server.pid
    db = server.data / "db.sqlite3"
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert "django_migrations" not in tables
    server.stop()
    done = subprocess.run([sys.executable, "-m", "hanji", "manage", "--data", str(server.data),
                           "--applets", str(WORKER_APPLETS), "migrate"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert {"django_migrations", "auth_user", "django_session"} <= tables


def test_workers_stop_when_their_supervisor_is_killed(start_server: Any) -> None:
    """A worker whose supervisor died (kill -9) stops by itself: no orphan serves on."""
    server = start(start_server, 2, "--worker-timeout", "2")
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    os.kill(server.pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in workers), 60,
               lambda: f"the workers {workers} to stop:\n{server.log}")
    assert "The supervisor (pid %d) is gone" % server.pid in server.log


def test_a_worker_failing_at_first_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A worker that exits before it is ready at the first start makes the supervisor
    stop its other workers and exit 1, saying so."""
    cmd = [sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(tmp_path / "data"),
           "--applets", str(WORKER_APPLETS), "--workers", "2", "--no-migrate"]
    env = dict(os.environ, HANJI_TEST_EXIT_ON_ACTIVATE="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "exited with code 3 before it was ready" in done.stderr
    assert "Hanji stopped (supervisor pid" in done.stderr


def test_restart_back_off_doubles_while_workers_keep_dying() -> None:
    """The delay before restarting a dead worker is 0, then doubles from 0.5 s up to 10 s
    while new workers die before being ready."""
    from hanji.supervisor.arbiter import Plan, Supervisor

    plan = Plan(host="127.0.0.1", port=0, workers=1, worker_timeout=30, drain_timeout=10, ready_file=None,
                worker_argv=[], env={})
    with socket.socket() as sock:
        supervisor = Supervisor(plan, sock, "http://127.0.0.1:0", None)
        delays = [supervisor._plan_respawn() for _ in range(8)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


class _PaperWorker:
    """A worker of :class:`_PaperSupervisor`: no process, moved on by the test."""

    def __init__(self, worker_id: int, generation: int) -> None:
        from hanji.supervisor._worker import WorkerState

        self.id = self.pid = worker_id
        self.generation = generation
        self.started = float(worker_id)
        self.state = WorkerState.BOOTING
        self.reason = ""

    @property
    def counted(self) -> bool:
        from hanji.supervisor._worker import WorkerState

        return self.state in (WorkerState.BOOTING, WorkerState.READY)

    def terminate(self, reason: str, deadline: float) -> None:
        from hanji.supervisor._worker import WorkerState

        self.state, self.reason = WorkerState.STOPPING, reason


def _paper_supervisor(workers: int) -> Any:
    """Return a supervisor whose workers are :class:`_PaperWorker` (none started yet)."""
    from hanji.supervisor.arbiter import Plan, Supervisor

    class _PaperSupervisor(Supervisor):
        spawned: list[_PaperWorker]

        def _spawn(self) -> Any:
            worker = _PaperWorker(self._next_id, self.generation)
            self._next_id += 1
            self.workers.append(worker)  # type: ignore[arg-type]
            self.spawned.append(worker)
            return worker

    plan = Plan(host="127.0.0.1", port=0, workers=workers, worker_timeout=30, drain_timeout=10, ready_file=None,
                worker_argv=[], env={})
    supervisor = _PaperSupervisor(plan, socket.socket(), "http://127.0.0.1:0", None)
    supervisor.sock.close()
    supervisor.spawned = []
    return supervisor


def _step(supervisor: Any, *signals: int, boot: bool = True) -> None:
    """One turn of the supervisor's loop with ``signals`` received; then every
    stopping worker has exited and, if ``boot``, every booting one is ready."""
    from hanji.supervisor._worker import WorkerState

    supervisor._signals.extend(signals)
    supervisor._handle_signals()
    supervisor._reconcile(time.monotonic())
    for worker in supervisor.workers:
        if boot and worker.state is WorkerState.BOOTING:
            worker.state = WorkerState.READY
    supervisor.workers = [w for w in supervisor.workers if w.state is not WorkerState.STOPPING]


def test_sighups_during_a_rolling_restart_make_one_further_pass_at_most() -> None:
    """SIGHUPs that arrive while a rolling restart's first replacement boots (under
    --reload each worker sends one) coalesce: the restart goes on to replace every
    worker started before the last one, at most one further pass (not one per
    signal), then the supervisor rests."""
    supervisor = _paper_supervisor(2)
    _step(supervisor)
    first = set(supervisor.spawned)
    _step(supervisor, signal.SIGHUP, boot=False)  # the first replacement starts, and boots
    for _ in range(3):
        _step(supervisor, signal.SIGHUP, boot=False)
    _step(supervisor, signal.SIGHUP, signal.SIGHUP, boot=False)
    for _ in range(20):
        _step(supervisor)
    replacements = supervisor.spawned[2:]
    assert 2 < len(replacements) <= 2 * 2, [(w.id, w.generation) for w in replacements]
    serving = supervisor._counted()
    assert len(serving) == 2 and all(w.generation == supervisor.generation for w in serving)
    assert not first & set(serving)
    before = len(supervisor.spawned)
    for _ in range(5):
        _step(supervisor)
    assert len(supervisor.spawned) == before  # settled: no restart without a further SIGHUP


def test_the_supervisor_rotates_the_shared_log(start_server: Any) -> None:
    """Workers append to hanji.log and the supervisor rotates it by size: no line is
    lost, each file stays near its size limit, and older files hold older lines."""
    limit = 20_000
    server = start(start_server, 2, "--log-max-bytes", str(limit), "--log-backups", "50")
    workers = wait_for_workers(server.pid, 2, lambda: server.log)
    with LoadLoop(server.url, "/res/workerpid/slow?ms=20", keepalive=2, fresh=2) as load:  # over seconds
        load.wait_requests(500, timeout=120)
    sent = load.result.ok
    assert load.result.failures == []
    logs = server.data

    def files() -> list[Path]:
        return sorted(logs.glob("hanji.log*"), key=lambda f: -int(f.suffix[1:]) if f.suffix[1:].isdigit() else 0)

    def started_lines() -> int:
        return sum(f.read_text().count("slow request started") for f in files())

    wait_until(lambda: started_lines() >= sent, 30, lambda: f"{started_lines()} of {sent} lines in the logs")
    rotated = [f for f in files() if f.suffix[1:].isdigit()]
    assert len(rotated) >= 2, files()
    for f in rotated:
        assert f.stat().st_size <= 4 * limit, (f, f.stat().st_size)  # rotated within a loop turn
    stamps = []
    for f in files():  # oldest first
        times = [line[:23] for line in f.read_text().splitlines() if line[:4].isdigit()]
        assert times, f"{f.name} holds no log line (rotated again at once by another process?)"
        stamps.append((f.name, min(times), max(times)))
    for (older, _, older_last), (newer, newer_first, _) in zip(stamps, stamps[1:]):
        assert older_last[:19] <= newer_first[:19] or older_last[:19] <= _plus_one_second(newer_first), \
            (older, older_last, newer, newer_first)
    assert workers


def _plus_one_second(stamp: str) -> str:
    """Return the ``YYYY-MM-DD HH:MM:SS`` log time ``stamp`` one second later."""
    import datetime

    t = datetime.datetime.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S") + datetime.timedelta(seconds=1)
    return t.strftime("%Y-%m-%d %H:%M:%S")
