"""Django behind ``twisted.web.wsgi.WSGIResource``, on Hanji's own thread pool.

The pool is not the reactor's shared one (which also resolves DNS): its threads are
named ``HanjiDjango-N`` and are daemon threads, so a request stuck past the drain
deadline cannot keep the process (or a kernel) from exiting.

Every job on the pool (``defer_to_django``, ``on_activate`` and ``on_deactivate``,
loading an applet) runs between two calls of Django's ``close_old_connections``, as
Django's own handler does around a WSGI request: a worker never starts
a job on a connection that broke or expired while it was idle, and never keeps one
open between jobs (with the default ``CONN_MAX_AGE = 0``).

Its queue is bounded (``hanji serve --django-queue N``): once N jobs wait for a
worker beyond the running ones, a Django request is answered 503 with Retry-After
at once, on the reactor thread, without touching the pool; ``defer_to_django``
fails with :class:`~hanji._exceptions.DjangoPoolFull`. The applets' own hooks
(``on_activate``...) are never refused.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable

from twisted.python.threadpool import ThreadPool
from twisted.web.wsgi import WSGIResource

from hanji._exceptions import DjangoPoolFull

# Seconds a refused client is asked to wait (the Retry-After header).
RETRY_AFTER = 2


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
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

    Each job runs between two ``close_old_connections()`` calls (see the module
    docstring).
    """

    threadFactory = staticmethod(_daemon_thread)  # type: ignore[assignment]
    _names = itertools.count(1)

    def __init__(self, size: int = 10, queue: int = 100) -> None:
        super().__init__(minthreads=1, maxthreads=max(1, size), name="HanjiDjango")
        if queue < 0:
            raise ValueError(f"The Django queue length must be 0 or more, not {queue}.")
        self.queue = queue

    def _generateName(self) -> str:
        return f"HanjiDjango-{next(self._names)}"

    def callInThreadWithCallback(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as a Django job (connections cleaned around it); any thread."""
        super().callInThreadWithCallback(onResult, _as_django_job, func, *args, **kw)

    def busy(self) -> int:
        """Return how many tasks run or wait in the pool (any thread)."""
        stats = self._team.statistics()
        return int(stats.busyWorkerCount + stats.backloggedWorkCount)

    def full(self) -> bool:
        """Return True if every worker is busy and ``queue`` jobs already wait; any
        thread (a snapshot: it may change right after)."""
        return self.busy() >= self.max + self.queue

    def overloaded(self, what: str) -> DjangoPoolFull:
        """Return the error that refuses ``what`` because the pool is full; any thread."""
        stats = self._team.statistics()
        return DjangoPoolFull(
            f"{what} was not run: the Django pool is full ({stats.busyWorkerCount} of {self.max} "
            f"workers busy, {stats.backloggedWorkCount} jobs waiting, queue limit {self.queue}). "
            f"Retry in {RETRY_AFTER} s, or give Django more room (hanji serve --django-threads N "
            "--django-queue N).",
            retry_after=RETRY_AFTER,
        )

    def stop_without_waiting(self) -> None:
        """Ask every worker to quit without joining them (a stuck worker stays
        behind as a daemon thread); any thread."""
        self.joined = True
        self.started = False
        self._team.quit()


# Headers by which a reverse proxy tells the path it serves the site under:
# the de facto standard, and the two that jupyter-server-proxy sets.
PREFIX_HEADERS = ("HTTP_X_FORWARDED_PREFIX", "HTTP_X_FORWARDED_CONTEXT", "HTTP_X_PROXYCONTEXTPATH")
_SAFE_PREFIX = re.compile(r"(/[A-Za-z0-9._~%@:+\-]+)+")


def proxy_prefix(environ: dict[str, Any]) -> str:
    """Return the proxy path prefix of a request ('' if none or malformed); any thread."""
    for key in PREFIX_HEADERS:
        value = environ.get(key, "").strip().rstrip("/")
        if value and _SAFE_PREFIX.fullmatch(value):
            return value
    return ""


def with_proxy_prefix(app: Any) -> Any:
    """Wrap a WSGI app so Django builds URLs under the proxy prefix (``reverse``,
    redirects, ``{{ hanji_base }}``); runs in the Django pool."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        prefix = proxy_prefix(environ)
        if prefix:
            environ["SCRIPT_NAME"] = prefix + environ.get("SCRIPT_NAME", "")
        return app(environ, start_response)

    return application


class _RequestLane:
    """The pool as the WSGIResource sees it (it only calls ``callInThread``): a
    request runs without the job wrapper, since Django's handler already closes old
    connections around it (its request_started and request_finished signals);
    the wrapper's two extra calls cost ~3 % of a trivial view's requests/s
    (bench/FINDINGS.md). Any thread."""

    def __init__(self, pool: DjangoPool) -> None:
        self._pool = pool

    def callInThread(self, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        ThreadPool.callInThreadWithCallback(self._pool, None, func, *args, **kw)


class _DjangoResource(WSGIResource):
    """Django's WSGIResource, answering 503 at once when its pool is full."""

    def __init__(self, reactor: Any, pool: DjangoPool, application: Any) -> None:
        super().__init__(reactor, _RequestLane(pool), application)
        self._pool = pool

    def render(self, request: Any) -> Any:
        """Hand the request to a Django worker, or refuse it with 503 if the pool
        is full; reactor thread."""
        if self._pool.full():
            method = request.method.decode("ascii", "replace")
            error = self._pool.overloaded(f"{method} {request.path.decode('utf-8', 'replace')}")
            request.setResponseCode(503)
            request.setHeader(b"retry-after", str(error.retry_after).encode("ascii"))
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return f"503 Service Unavailable: {error}\n".encode("utf-8")
        return super().render(request)


def wsgi_resource(reactor: Any, pool: DjangoPool) -> WSGIResource:
    """Return the WSGIResource serving Django's application on ``pool``, refusing
    requests with 503 while the pool's queue is full.

    Call after Django is set up.
    """
    from django.core.handlers.wsgi import WSGIHandler

    return _DjangoResource(reactor, pool, with_proxy_prefix(WSGIHandler()))
