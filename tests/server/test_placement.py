"""Applets placed in every process or in exactly one (hanji.server.placement).

Fast tests drive the lease logic and the lifecycle with fakes (a shared in-memory
lease store stands for Redis, a synchronous pool for the Django pool, a Clock for
the reactor); the backends are tested against the real thing (file locks across
processes, a throwaway redis-server, the throwaway PostgreSQL); two real
``hanji serve`` processes sharing a data dir show the whole path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from hanji import _errorlog, _threads
from hanji.core.applet import Applet, Placement
from hanji.server._lease_file import FileLeases
from hanji.server.lifecycle import AppletLifecycle
from hanji.server.placement import Placements, Where, lease_backend
from hanji.server.registry import AppletState, Registry

from support.net import free_port
from support.paths import ROOT
from support.polling import wait_until
from support.redis_server import RedisServer
from support.workers import beacon_pid

PLACEMENT_APPLETS = ROOT / "tests" / "applets" / "placement"


@pytest.fixture(autouse=True)
def _no_thread_checks() -> Iterator[None]:
    """The test thread stands for the reactor thread: turn the debug thread checks off."""
    before = _threads.debug_enabled()
    _threads.set_debug(False)
    _errorlog.clear()
    yield
    _threads.set_debug(before)
    _errorlog.clear()


# -- fakes ------------------------------------------------------------------------------


class Store:
    """The shared lease store of several fake processes (Redis stands behind it)."""

    def __init__(self) -> None:
        self.owner: dict[str, object] = {}
        self.down = False


class FakeLeases:
    """One process's view of a :class:`Store`, with the backend's interface."""

    description = "fake leases"

    def __init__(self, store: Store) -> None:
        self.store = store

    def _check(self) -> None:
        if self.store.down:
            raise ConnectionError("the lease store is down")

    def acquire(self, key: str) -> bool:
        self._check()
        if self.store.owner.get(key, self) is self:
            self.store.owner[key] = self
            return True
        return False

    def renew(self, key: str) -> bool:
        self._check()
        return self.store.owner.get(key) is self

    def release(self, key: str) -> None:
        if self.store.owner.get(key) is self:
            del self.store.owner[key]

    def close(self) -> None:
        for key in [k for k, v in self.store.owner.items() if v is self]:
            del self.store.owner[key]

    def die(self) -> None:
        """The process is killed: its leases go (expired, or its connection dropped)."""
        self.close()


class SyncPool:
    """A Django pool that runs each job at once on the calling thread."""

    def callInThreadWithCallback(self, on_result: Callable[[bool, Any], None], f: Callable[..., Any],
                                 *args: Any, **kwargs: Any) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)


class SyncClock(Clock):
    """A Clock whose ``callFromThread`` runs at once (the test thread is the reactor's)."""

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


def _sync(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(f, *args)


class Process:
    """One fake Hanji process: a registry, a lifecycle and its placements."""

    def __init__(self, store: Store | None) -> None:
        self.clock = SyncClock()
        self.leases = FakeLeases(store) if store is not None else None
        self.placements = Placements(self.clock, self.leases, interval=1.0, in_thread=_sync)
        self.registry = Registry()
        self.lifecycle = AppletLifecycle(self.clock, self.registry, lambda: SyncPool(),  # type: ignore[arg-type,return-value]
                                         activate_timeout=None, routes_changed=lambda: None,
                                         placements=self.placements)

    def activate(self, applet: Applet) -> Any:
        return _result(self.lifecycle.activate(applet))

    def where(self, applet_id: str) -> Where:
        return self.placements.where(self.registry.get(applet_id))


def _result(d: defer.Deferred[Any]) -> Any:
    """Return the result of a Deferred that fired already (raise its failure)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class Timer(Applet):
    """An "exactly one" applet that counts its hooks."""

    placement = Placement.ONE

    def __init__(self) -> None:
        super().__init__(id="timer")
        self.activations = 0
        self.deactivations = 0

    def on_activate(self) -> None:
        self.activations += 1

    def on_deactivate(self) -> None:
        self.deactivations += 1


# -- the lease logic with fakes ---------------------------------------------------------------


def test_an_exactly_one_applet_runs_in_the_lease_holder_only_and_is_mounted_everywhere() -> None:
    """Of two processes, the first to activate a "one" applet runs its on_activate;
    the second mounts it (active) without running it and says it stands by."""
    store = Store()
    a, b = Process(store), Process(store)
    ta, tb = Timer(), Timer()
    a.activate(ta)
    b.activate(tb)
    assert (ta.activations, tb.activations) == (1, 0)
    assert a.registry.get("timer").is_active and b.registry.get("timer").is_active
    assert (a.where("timer"), b.where("timer")) == (Where.HERE, Where.STANDBY)
    assert str(Where.HERE) == "this process (lease held)" and str(Where.STANDBY) == "another process (standby)"


def test_a_standby_process_takes_over_when_the_holder_dies() -> None:
    """When the holder's leases go (killed), the standby's next try takes the lease
    and runs on_activate once; further tries change nothing."""
    store = Store()
    a, b = Process(store), Process(store)
    tb = Timer()
    a.activate(Timer())
    b.activate(tb)
    _result(b.placements.tick())
    assert tb.activations == 0
    assert a.leases is not None
    a.leases.die()
    _result(b.placements.tick())
    assert tb.activations == 1 and b.where("timer") is Where.HERE
    _result(b.placements.tick())
    assert tb.activations == 1


def test_the_retry_loop_runs_on_the_reactor_clock() -> None:
    """Once started, the placements renew and retry every interval on the reactor
    clock, and stop doing so when told."""
    store = Store()
    a, b = Process(store), Process(store)
    tb = Timer()
    a.activate(Timer())
    b.activate(tb)
    b.placements.start()
    assert a.leases is not None
    a.leases.die()
    b.clock.advance(1.0)
    assert tb.activations == 1
    b.placements.stop_retrying()
    assert not b.clock.getDelayedCalls()


def test_deactivation_releases_the_lease_after_on_deactivate_and_a_standby_takes_it() -> None:
    """Deactivating the holder runs its on_deactivate, then releases the lease; the
    standby's next try runs its own on_activate. A standby's deactivation runs no
    on_deactivate (its on_activate never ran)."""
    store = Store()
    a, b = Process(store), Process(store)
    ta, tb = Timer(), Timer()
    a.activate(ta)
    b.activate(tb)
    _result(a.lifecycle.deactivate("timer"))
    assert ta.deactivations == 1 and "timer" not in store.owner
    _result(b.placements.tick())
    assert tb.activations == 1
    c = Process(store)
    tc = Timer()
    c.activate(tc)
    _result(c.lifecycle.deactivate("timer"))
    assert (tc.activations, tc.deactivations) == (0, 0)
    assert store.owner["timer"] is b.leases


def test_a_hot_swap_keeps_the_lease_for_the_new_instance() -> None:
    """Swapping the holder's applet stops the old instance and runs the new one's
    on_activate without letting the lease go (no other process slips in)."""
    store = Store()
    a = Process(store)
    old, new = Timer(), Timer()
    a.activate(old)
    a.activate(new)
    assert (old.activations, old.deactivations, new.activations) == (1, 1, 1)
    assert store.owner["timer"] is a.leases
    assert a.registry.get("timer").applet is new and a.where("timer") is Where.HERE


def test_a_lost_lease_stops_the_applet_s_work_and_keeps_its_web_side() -> None:
    """When a renewal finds the lease gone (another process has it), on_deactivate
    runs, what on_activate scheduled is cancelled, and the applet stays mounted, standing by."""
    store = Store()
    a = Process(store)
    ta = Timer()
    a.activate(ta)
    call = a.clock.callLater(100, lambda: None)
    a.registry.get("timer").applet._hanji_opened.record("call", call)
    store.owner["timer"] = object()  # expired, and another process took it
    _result(a.placements.tick())
    assert ta.deactivations == 1 and not call.active()
    assert a.registry.get("timer").is_active and a.where("timer") is Where.STANDBY


def test_without_a_lease_backend_every_applet_runs_here() -> None:
    """One process (a notebook kernel): an "exactly one" applet runs at once, says it
    runs in this single process, and hot swaps run each new instance."""
    k = Process(None)
    first, second = Timer(), Timer()
    k.activate(first)
    k.activate(second)
    assert (first.activations, first.deactivations, second.activations) == (1, 1, 1)
    assert k.where("timer") is Where.ALONE
    plain = Applet(id="web")
    k.activate(plain)
    assert k.where("web") is Where.EVERY and str(Where.EVERY) == "every worker"


def test_a_lease_store_that_is_down_leaves_the_applet_standing_by_and_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """With the lease store down an "exactly one" applet stands by (mounted, not
    run); the failure is logged once for the outage, the recovery once, and the
    applet runs at the first try after it."""
    store = Store()
    store.down = True
    a = Process(store)
    ta = Timer()
    with caplog.at_level("INFO", logger="hanji.server"):
        a.activate(ta)
        for _ in range(3):
            _result(a.placements.tick())
        assert ta.activations == 0 and a.registry.get("timer").is_active
        store.down = False
        _result(a.placements.tick())
    assert ta.activations == 1
    failures = [r for r in caplog.records if "failed: the lease store is down" in r.getMessage()]
    assert len(failures) == 1 and "Leases work again" in caplog.text


def test_a_bad_placement_fails_the_activation_naming_the_applet_and_the_values() -> None:
    """placement = "twice" fails the applet's activation with an error naming the
    applet and the allowed values."""

    class Twice(Applet):
        placement = "twice"

    a = Process(Store())
    with pytest.raises(ValueError, match=r"Applet 'twice': placement = 'twice' is not a placement; "
                                         r"use one of 'every', 'one'"):
        a.activate(Twice())
    assert a.registry.get("twice").state is AppletState.FAILED


def test_the_backend_follows_the_environment(tmp_path: Path) -> None:
    """A Redis HANJI_BUS gives Redis leases, a PostgreSQL DATABASE_URL advisory
    locks, anything else file locks in the data dir."""
    assert type(lease_backend(tmp_path, 3, {"HANJI_BUS": "redis://127.0.0.1:1/0",
                                            "DATABASE_URL": "postgres://x/y"})).__name__ == "RedisLeases"
    assert type(lease_backend(tmp_path, 3, {"DATABASE_URL": "postgres://x/y"})).__name__ == "PostgresLeases"
    files = lease_backend(tmp_path, 3, {"HANJI_BUS": "unix:///tmp/bus"})
    assert isinstance(files, FileLeases) and files.directory == tmp_path / "leases"


# -- the backends, for real -------------------------------------------------------------------------


_HOLDER = """
import sys, time
from pathlib import Path
from hanji.server._lease_file import FileLeases
leases = FileLeases(Path(sys.argv[1]))
assert leases.acquire("job")
print("held", flush=True)
time.sleep(600)
"""


def test_file_leases_are_exclusive_across_processes_and_freed_when_the_holder_is_killed(tmp_path: Path) -> None:
    """A file lease held by another process cannot be taken; once that process is
    killed with SIGKILL the OS frees it and it can; within one process two stores
    exclude each other too, and release frees it."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = FileLeases(tmp_path)
        assert not mine.acquire("job")
        assert mine.acquire("other")
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        assert mine.acquire("job") and mine.renew("job")
        theirs = FileLeases(tmp_path)
        assert not theirs.acquire("job")
        mine.release("job")
        assert not mine.renew("job") and theirs.acquire("job")
        assert (tmp_path / "job.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server for the test (tests/support/redis_server.py)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_redis_leases_are_exclusive_renewed_and_expire_when_not_renewed(redis_server: RedisServer) -> None:
    """A Redis lease is held by one store at a time, renewals keep it, release frees it,
    and one whose holder stops renewing (a killed process) expires after its TTL."""
    from hanji.server._lease_redis import PREFIX, RedisLeases

    redis_url = redis_server.url
    a, b = RedisLeases(redis_url, ttl=2.0), RedisLeases(redis_url, ttl=2.0)
    try:
        assert a.acquire("job") and not b.acquire("job")
        assert a.renew("job")
        a.release("job")
        assert not a.renew("job") and b.acquire("job")
        # b "dies": it stops renewing, the key expires, a takes it and b learns it lost it.
        wait_until(lambda: a.acquire("job"), 30, "the lease of a holder that stopped renewing never expired")
        assert not b.renew("job")
        import redis

        assert redis.Redis.from_url(redis_url).pttl(PREFIX + "job") > 0
    finally:
        a.close()
        b.close()


def test_redis_leases_count_as_held_while_redis_is_unreachable_until_their_ttl(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """While Redis cannot be reached a held lease counts as held until its TTL since
    the last renewal passed (its key cannot outlive that), then as lost."""
    import types

    from hanji.server import _lease_redis

    now = [1000.0]  # the lease's clock, moved by the test: no race with a slow machine
    monkeypatch.setattr(_lease_redis, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    leases = _lease_redis.RedisLeases(redis_server.url, ttl=3.0)
    try:
        assert leases.acquire("job")
        redis_server.stop()
        now[0] += 2.9
        assert leases.renew("job")
        now[0] += 0.2
        assert not leases.renew("job") and not leases.renew("job")
    finally:
        leases.close()


def test_postgres_advisory_leases_are_exclusive_and_go_with_the_holder_s_connection(postgres_cluster: Any) -> None:
    """A PostgreSQL advisory lease is held by one connection at a time; when the
    holder's connection is terminated (its process died) the lock goes with it, the
    holder's renewal says so and the other store takes it. The server checks the
    lease session with keepalives of its own (a dead client host)."""
    from hanji.server._lease_postgres import PostgresLeases

    url = postgres_cluster.url(postgres_cluster.create_database())
    a, b = PostgresLeases(url), PostgresLeases(url)
    try:
        assert a.acquire("job") and a.acquire("job") and not b.acquire("job")
        assert a.renew("job")
        # The server's own keepalives on the lease session: a dead host's locks go in ~25 s.
        assert a._conn.execute("SHOW tcp_keepalives_idle").fetchone()[0] in ("10", "10s")
        pid = a._conn.info.backend_pid
        with postgres_cluster.connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not a.renew("job")
        assert b.acquire("job") and not a.acquire("job")
        b.release("job")
        assert a.acquire("job")
    finally:
        a.close()
        b.close()


# -- two real `hanji serve` processes on one host ---------------------------------------------


def _where_on_home_page(server: Any) -> str:
    """Return what the home page says about where the beacon runs."""
    import re

    page = server.get("/").text
    found = re.search(r'id="applet-beacon".*?class="placement"[^>]*>Runs in: ([^<]+)<', page, re.S)
    return found.group(1) if found else ""


@pytest.mark.parametrize("backend", ["file", "postgres"])
def test_two_servers_run_an_exactly_one_applet_once_and_take_over(
        backend: str, tmp_path: Path, start_server: Any, request: pytest.FixtureRequest) -> None:
    """Two `hanji serve` sharing a data dir (file leases) or a PostgreSQL database
    (advisory locks; a data dir each): the beacon's fixed port is bound once, by the
    first; its home page says "this process (lease held)", the other's "another
    process (standby)"; after a SIGKILL of the holder the other binds it; stopped
    with SIGTERM, the new holder releases it at once to a third."""
    port = free_port()
    env = {"HANJI_BEACON_PORT": str(port), "HANJI_LEASE_TTL": "1.5"}
    if backend == "file":
        data: Callable[[int], list[str]] = lambda n: ["--data", str(tmp_path / "shared")]
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        env["DATABASE_URL"] = cluster.url(cluster.create_database())
        migrated = subprocess.run([sys.executable, "-m", "hanji", "manage", "--applets", str(PLACEMENT_APPLETS),
                                   "--data", str(tmp_path / "manage"), "migrate", "--noinput"],
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                  env={**os.environ, **env, "HANJI_ECHO_PORT": "0"})
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        data = lambda n: ["--data", str(tmp_path / f"data{n}"), "--no-migrate"]
    first = start_server([PLACEMENT_APPLETS], args=data(1), env=env)
    second = start_server([PLACEMENT_APPLETS], args=data(2), env=env)
    assert beacon_pid(port) == first.pid
    assert "beacon on_activate" in first.log and "beacon on_activate" not in second.log
    assert "Applet 'beacon' active" in second.log  # mounted, standing by
    assert ("PostgreSQL advisory locks" if backend == "postgres" else "file locks in") in second.log
    assert _where_on_home_page(first) == "this process (lease held)"
    assert _where_on_home_page(second) == "another process (standby)"
    assert json.loads(second.get("/applets/beacon/pid/").body)["pid"] == second.pid  # its web side serves

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    wait_until(lambda: beacon_pid(port) == second.pid, 60, lambda: f"no takeover:\n{second.log}")
    assert _where_on_home_page(second) == "this process (lease held)"
    assert second.log.count("beacon on_activate") == 1

    third = start_server([PLACEMENT_APPLETS], args=data(3), env=env)
    assert "beacon on_activate" not in third.log
    assert second.stop() == 0
    assert "beacon on_deactivate" in second.log
    wait_until(lambda: beacon_pid(port) == third.pid, 60, lambda: f"no takeover after SIGTERM:\n{third.log}")


def test_a_notebook_kernel_runs_an_exactly_one_applet_and_swaps_it_live(tmp_path: Path) -> None:
    """In a kernel (one process) an "exactly one" applet's on_activate runs at once,
    a hot swap runs the new version's, and %hanji status says it runs in this single
    process while a plain applet runs in every worker."""
    import re

    from support.kernels import Kernel

    kernel = Kernel(tmp_path, applets=None)
    try:
        kernel.ok("%load_ext hanji")
        kernel.ok("""
            import hanji
            from hanji.core.applet import Applet, Placement

            ran = []

            class Ticker(Applet):
                placement = Placement.ONE
                version = 1

                def on_activate(self):
                    ran.append(self.version)

            hanji.activate(Ticker(id="ticker"))
            hanji.activate(Applet(id="page"))
        """)
        kernel.ok("""
            class Ticker2(Ticker):
                version = 2

            hanji.activate(Ticker2(id="ticker"))
        """)
        assert kernel.value("ran") == [1, 2]
        text = kernel.ok("%hanji status").text
        assert re.search(r"ticker\s+active\s+v2\s.*this process \(single process\)", text), text
        assert re.search(r"page\s+active\s+v1\s.*every worker", text), text
    finally:
        kernel.shutdown()
