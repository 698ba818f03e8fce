"""The Django worker pool: Hanji's own threads for Django work.

The pool is not the reactor's shared one (which also resolves DNS): its threads are
named ``HanjiDjango-N`` and are daemon threads, so a request stuck past the drain
deadline cannot keep the process (or a kernel) from exiting. Jobs run in those
threads; submitting, counting and stopping happen on the reactor thread.

Every job on the pool (``defer_to_django``, ``on_activate`` and ``on_deactivate``,
loading an applet) runs between two calls of Django's ``close_old_connections``, as
Django's own handler does around a WSGI request: a worker never starts a job on a
connection that broke or expired while it was idle, and never keeps one open
between jobs (with the default ``CONN_MAX_AGE = 0``). Django requests skip that
wrapper: Django's handler does the same itself.

Its queue is bounded (``hanji serve --django-queue N``): once N jobs wait for a
worker beyond the running ones, a Django request is answered 503 with Retry-After
at once, on the reactor thread, without touching the pool; ``defer_to_django``
fails with :class:`~hanji._exceptions.DjangoPoolFull`. The applets' own hooks
(``on_activate``...) are never refused.

The pool counts its jobs itself (submitted, not yet returned), so that the drain
can be told the moment the count reaches zero (:attr:`DjangoPool.job_watchers`)
instead of polling.

Hand-off: jobs go through one ``queue.SimpleQueue`` (C code) that idle workers
block on, as in ``concurrent.futures.ThreadPoolExecutor`` (what gunicorn's gthread
worker runs requests on); a worker is started when a job finds none idle, up to
``size``. Twisted's ThreadPool, whose API this keeps (``deferToThreadPool`` takes
the pool), dispatches each job through its ``Team`` coordinator and a per-worker
``queue.Queue``: 13 µs of CPU per job against 2 µs here in a loop, and a trivial
Django view serves about a third more requests per CPU-second on this pool
(bench/FINDINGS.md, the lean bridge).
"""

from __future__ import annotations

import itertools
import logging
import queue as _queue
import threading
from typing import Any, Callable

from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from hanji._exceptions import DjangoPoolFull

log = logging.getLogger("hanji.django")

# Seconds a refused client is asked to wait (the Retry-After header).
RETRY_AFTER = 2

_thread_numbers = itertools.count(1)

# Put in the queue once per worker to make it quit.
_QUIT = None


def _close_old_connections() -> None:
    """Close this thread's database connections that are broken or past
    ``CONN_MAX_AGE``; Django worker thread."""
    from django.conf import settings

    if settings.configured:
        from django.db import close_old_connections

        close_old_connections()


def _as_django_job(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``func`` with the thread's stale database connections closed before and
    after, as Django does around a request; Django worker thread."""
    _close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        _close_old_connections()


class DjangoPool(ThreadPool):
    """The Django worker pool, with ``size`` workers and room for ``queue`` waiting
    jobs; start and stop it from the reactor thread.

    It keeps the API of Twisted's ThreadPool that Hanji and ``deferToThreadPool``
    use (``start``, ``stop``, ``started``, ``joined``, ``max``, ``threads``,
    ``callInThread``, ``callInThreadWithCallback``) over its own hand-off.

    Each ``(reactor, f)`` in ``job_watchers`` (a drain adds itself) gets ``f``
    called with ``reactor.callFromThread`` each time a job returns; with none it
    costs one test of an empty list per job.
    """

    def __init__(self, size: int = 10, queue: int = 100) -> None:
        super().__init__(minthreads=1, maxthreads=max(1, size), name="HanjiDjango")
        if queue < 0:
            raise ValueError(f"The Django queue length must be 0 or more, not {queue}.")
        self.queue = queue
        self._work: _queue.SimpleQueue[Any] = _queue.SimpleQueue()
        self._lock = threading.Lock()
        self._jobs = 0  # submitted and not returned; under _lock
        self._idle = 0  # workers free to take a job at once; under _lock
        # (reactor, callable) pairs; changed on the reactor thread, read by workers.
        self.job_watchers: list[tuple[Any, Callable[[], Any]]] = []

    # -- ThreadPool's API -----------------------------------------------------------

    @property
    def workers(self) -> int:
        """Return how many worker threads are alive (any thread)."""
        return sum(1 for thread in self.threads if thread.is_alive())

    def start(self) -> None:
        """Start the pool: one worker, and one more per job already waiting (up to
        ``max``); reactor thread."""
        self.joined = False
        self.started = True
        with self._lock:
            waiting = min(self._jobs, self.max)
        for _ in range(waiting):
            self._spawn(reserved=True)  # each takes a job that waits
        for _ in range(self.min - waiting):
            self._spawn(reserved=False)

    def stop(self) -> None:
        """Make every worker quit once its job ends and wait for them; it blocks
        (run it off the reactor, as Hanji's shutdown does)."""
        threads = list(self.threads)
        self.stop_without_waiting()
        for thread in threads:
            thread.join()

    def stop_without_waiting(self) -> None:
        """Make every worker quit once its job ends, without joining them (a stuck
        worker stays behind as a daemon thread); any thread."""
        self.joined = True
        self.started = False
        with self._lock:
            threads, self.threads = self.threads, []
        for _ in threads:
            self._work.put(_QUIT)

    def callInThreadWithCallback(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as a Django job (connections cleaned around it) and call
        ``onResult(ok, result_or_failure)`` in the worker when it returns, as
        Twisted's ThreadPool does; any thread."""
        self.submit(onResult, _as_django_job, func, *args, **kw)

    # -- Hanji's ------------------------------------------------------------------

    def submit(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as is (no connection clean-up: a Django request, whose
        handler does it) and count it until it returns; any thread. Ignored once
        the pool was stopped, as by ThreadPool."""
        if self.joined:
            return
        thread = None
        with self._lock:
            self._jobs += 1
            if self._idle:
                self._idle -= 1
            elif self.started and len(self.threads) < self.max:
                thread = self._new_worker(reserved=True)
        self._work.put((onResult, func, args, kw))
        if thread is not None:
            thread.start()

    def _spawn(self, reserved: bool) -> None:
        """Start one worker; ``reserved``: a job is already waiting for it."""
        with self._lock:
            thread = self._new_worker(reserved)
        thread.start()

    def _new_worker(self, reserved: bool) -> threading.Thread:
        """Return a new worker thread, counted in ``threads`` but not started; under
        ``_lock`` (so that concurrent submissions never start more than ``max``)."""
        thread = threading.Thread(target=self._worker, args=(reserved,), daemon=True,
                                  name=f"HanjiDjango-{next(_thread_numbers)}")
        self.threads.append(thread)
        return thread

    def _worker(self, reserved: bool) -> None:
        """Take jobs from the queue and run them until told to quit; Django worker
        thread."""
        get, lock = self._work.get, self._lock
        while True:
            if not reserved:
                with lock:
                    self._idle += 1
            reserved = False
            item = get()
            if item is _QUIT:
                with lock:
                    self._idle -= 1
                return
            onResult, func, args, kw = item
            del item
            try:
                result = func(*args, **kw)
                ok = True
            except BaseException:
                result, ok = Failure(), False
            del func, args, kw
            with lock:
                self._jobs -= 1
            if self.job_watchers:
                for reactor, done in tuple(self.job_watchers):
                    reactor.callFromThread(done)
            if onResult is not None:
                try:
                    onResult(ok, result)
                except BaseException:
                    log.exception("A Django pool job's result callback failed.")
            elif not ok:
                log.error("A Django pool job failed:\n%s", result.getTraceback())
            del onResult, result

    def busy(self) -> int:
        """Return how many jobs run or wait in the pool (any thread)."""
        return self._jobs

    def full(self) -> bool:
        """Return True if every worker is busy and ``queue`` jobs already wait; any
        thread (a snapshot: it may change right after)."""
        return self._jobs >= self.max + self.queue

    def overloaded(self, what: str) -> DjangoPoolFull:
        """Return the error that refuses ``what`` because the pool is full; any thread."""
        running = min(self._jobs, self.max)
        return DjangoPoolFull(
            f"{what} was not run: the Django pool is full ({running} of {self.max} "
            f"workers busy, {self._jobs - running} jobs waiting, queue limit {self.queue}). "
            f"Retry in {RETRY_AFTER} s, or give Django more room (hanji serve --django-threads N "
            "--django-queue N).",
            retry_after=RETRY_AFTER,
        )
