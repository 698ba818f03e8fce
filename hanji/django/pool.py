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
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable

from twisted.python.threadpool import ThreadPool

from hanji import _compat
from hanji._exceptions import DjangoPoolFull

# Seconds a refused client is asked to wait (the Retry-After header).
RETRY_AFTER = 2

_thread_numbers = itertools.count(1)


def _django_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    """Return a daemon thread named ``HanjiDjango-N`` for the pool (its own name,
    not ThreadPool's ``PoolThread-…``, so stacks and watchdog reports read well)."""
    kwargs["name"] = f"HanjiDjango-{next(_thread_numbers)}"
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


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

    Each ``(reactor, f)`` in ``job_watchers`` (a drain adds itself) gets ``f``
    called with ``reactor.callFromThread`` each time a job returns; with none it
    costs one test of an empty list per job.
    """

    threadFactory = staticmethod(_django_thread)  # type: ignore[assignment]

    def __init__(self, size: int = 10, queue: int = 100) -> None:
        super().__init__(minthreads=1, maxthreads=max(1, size), name="HanjiDjango")
        if queue < 0:
            raise ValueError(f"The Django queue length must be 0 or more, not {queue}.")
        self.queue = queue
        self._jobs = 0  # submitted and not returned; under _count_lock
        self._count_lock = threading.Lock()
        # (reactor, callable) pairs; changed on the reactor thread, read by workers.
        self.job_watchers: list[tuple[Any, Callable[[], Any]]] = []

    def callInThreadWithCallback(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as a Django job (connections cleaned around it); any thread."""
        self.submit(onResult, _as_django_job, func, *args, **kw)

    def submit(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as is (no connection clean-up: a Django request, whose
        handler does it) and count it until it returns; any thread."""
        with self._count_lock:
            self._jobs += 1
        super().callInThreadWithCallback(onResult, self._counted, func, *args, **kw)

    def _counted(self, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run one job and count it done; Django worker thread."""
        try:
            return func(*args, **kw)
        finally:
            with self._count_lock:
                self._jobs -= 1
            if self.job_watchers:
                for reactor, done in tuple(self.job_watchers):
                    reactor.callFromThread(done)

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

    def stop_without_waiting(self) -> None:
        """Ask every worker to quit without joining them (a stuck worker stays
        behind as a daemon thread); any thread."""
        _compat.pool_quit_without_joining(self)
