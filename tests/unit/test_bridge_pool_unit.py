"""The Django pool (hanji.django.pool) on its own: its hand-off, growth, counting,
watchers and stop, with real threads and no reactor (a stand-in runs
``callFromThread`` calls on the calling thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hanji.django.pool import DjangoPool
from support.polling import wait_until

WAIT = 20.0  # a hang guard, never a timed assertion


class InlineReactor:
    """Runs ``callFromThread`` calls at once, on the calling thread, and counts them."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        with self._lock:
            self.calls += 1
        f(*args, **kw)


@pytest.fixture
def pool() -> Iterator[DjangoPool]:
    """A started pool of 3 workers and a queue of 2, stopped after the test."""
    p = DjangoPool(3, 2)
    p.start()
    yield p
    p.stop_without_waiting()


def _results(pool: DjangoPool, jobs: list[Any]) -> list[tuple[bool, Any]]:
    """Run ``jobs`` through callInThreadWithCallback; return their (ok, result) pairs in order."""
    got: list[tuple[bool, Any]] = []
    done = threading.Event()

    def on_result(ok: bool, result: Any) -> None:
        got.append((ok, result))
        if len(got) == len(jobs):
            done.set()

    for job in jobs:
        pool.callInThreadWithCallback(on_result, job)
        wait_until(lambda: pool.busy() == 0, WAIT, "the job never ended")
    assert done.wait(WAIT)
    return got


def test_jobs_run_on_named_daemon_workers_with_their_results(pool: DjangoPool) -> None:
    """A job runs on a daemon HanjiDjango-N thread and its callback gets its result, or a Failure for an exception."""
    def where() -> tuple[str, bool]:
        thread = threading.current_thread()
        return thread.name, thread.daemon

    def fails() -> None:
        raise KeyError("boom")

    (ok, (name, daemon)), (failed_ok, failure) = _results(pool, [where, fails])
    assert ok and name.startswith("HanjiDjango-") and daemon
    assert not failed_ok and isinstance(failure, Failure) and failure.check(KeyError)


def test_an_idle_worker_takes_the_next_job_without_a_new_thread(pool: DjangoPool) -> None:
    """Jobs submitted one after another reuse the idle worker: the pool does not grow."""
    names = [name for _, name in _results(pool, [lambda: threading.current_thread().name] * 5)]
    assert len(set(names)) == 1 and len(pool.threads) == 1


def test_the_pool_grows_to_its_size_then_queues_and_counts(pool: DjangoPool) -> None:
    """Jobs that find every worker busy start new workers up to the size, then wait in the queue, counted until the pool is full."""
    gate = threading.Event()
    running: list[str] = []
    lock = threading.Lock()

    def blocked() -> None:
        with lock:
            running.append(threading.current_thread().name)
        gate.wait(WAIT)

    for _ in range(5):
        pool.submit(None, blocked)
    wait_until(lambda: len(running) == 3, WAIT, "three workers never ran")
    assert len(pool.threads) == 3 and len(set(running)) == 3
    assert pool.busy() == 5 and pool.full()
    gate.set()
    wait_until(lambda: pool.busy() == 0, WAIT, "the jobs never ended")
    assert len(running) == 5 and len(pool.threads) == 3 and not pool.full()


def test_jobs_submitted_before_start_run_at_start() -> None:
    """Jobs submitted before the pool starts wait and run once it starts, each on a worker of its own up to the size."""
    p = DjangoPool(4, 10)
    ran = threading.Semaphore(0)
    for _ in range(2):
        p.submit(None, ran.release)
    assert p.busy() == 2 and p.threads == []
    p.start()
    try:
        assert ran.acquire(timeout=WAIT) and ran.acquire(timeout=WAIT)
        wait_until(lambda: p.busy() == 0, WAIT, "the jobs never ended")
        assert len(p.threads) == 2
    finally:
        p.stop()


def test_job_watchers_hear_of_every_job_through_their_reactor(pool: DjangoPool) -> None:
    """Each watcher is called through its reactor's callFromThread once per job that returns, failed ones included, and the count is already down then."""
    reactor = InlineReactor()
    seen: list[int] = []
    pool.job_watchers.append((reactor, lambda: seen.append(pool.busy())))

    def fails() -> None:
        raise ValueError("no")

    _results(pool, [lambda: 1, fails, lambda: 3])
    assert reactor.calls == 3 and seen == [0, 0, 0]


def test_defer_to_thread_pool_takes_the_pool(pool: DjangoPool) -> None:
    """twisted's deferToThreadPool runs a function on the pool (with its connection clean-up) and fires with its result."""
    got: list[Any] = []
    deferToThreadPool(InlineReactor(), pool, lambda x: x * 2, 21).addCallback(got.append)  # type: ignore[arg-type]
    wait_until(lambda: got, WAIT, "the Deferred never fired")
    assert got == [42]


def test_stop_joins_idle_workers_and_stop_without_waiting_leaves_a_stuck_one() -> None:
    """stop() returns once the idle workers quit; stop_without_waiting() returns at once despite a stuck job, and later jobs are ignored."""
    p = DjangoPool(2, 0)
    p.start()
    first = list(p.threads)
    p.stop()
    assert not any(t.is_alive() for t in first) and not p.started

    q = DjangoPool(2, 0)
    q.start()
    gate, entered = threading.Event(), threading.Event()
    q.submit(None, lambda: (entered.set(), gate.wait(WAIT)))
    assert entered.wait(WAIT)
    stuck = list(q.threads)
    q.stop_without_waiting()
    assert any(t.is_alive() for t in stuck) and q.joined
    q.submit(None, lambda: None)
    assert q.busy() == 1  # ignored: only the stuck job counts
    gate.set()
    wait_until(lambda: not any(t.is_alive() for t in stuck), WAIT, "the workers never quit")
    assert q.busy() == 0
