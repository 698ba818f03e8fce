"""Django behind ``twisted.web.wsgi.WSGIResource``, on Hanji's own thread pool.

The pool is not the reactor's shared one (which also resolves DNS): its threads are
named ``HanjiDjango-N`` and are daemon threads, so a request stuck past the drain
deadline cannot keep the process (or a kernel) from exiting.

Every job on the pool (a WSGI request, ``defer_to_django``, ``on_activate`` and
``on_deactivate``, loading an applet) runs between two calls of Django's
``close_old_connections``, as Django does around a request: a worker never starts
a job on a connection that broke or expired while it was idle, and never keeps one
open between jobs (with the default ``CONN_MAX_AGE = 0``).
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable

from twisted.python.threadpool import ThreadPool
from twisted.web.wsgi import WSGIResource


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
    """The Django worker pool; start and stop it from the reactor thread.

    Each job runs between two ``close_old_connections()`` calls (see the module
    docstring).
    """

    threadFactory = staticmethod(_daemon_thread)  # type: ignore[assignment]
    _names = itertools.count(1)

    def __init__(self, size: int = 10) -> None:
        super().__init__(minthreads=1, maxthreads=max(1, size), name="HanjiDjango")

    def _generateName(self) -> str:
        return f"HanjiDjango-{next(self._names)}"

    def callInThreadWithCallback(self, onResult: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queue ``func`` as a Django job (connections cleaned around it); any thread."""
        super().callInThreadWithCallback(onResult, _as_django_job, func, *args, **kw)

    def busy(self) -> int:
        """Return how many tasks run or wait in the pool (any thread)."""
        stats = self._team.statistics()
        return int(stats.busyWorkerCount + stats.backloggedWorkCount)

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


def wsgi_resource(reactor: Any, pool: ThreadPool) -> WSGIResource:
    """Return the WSGIResource serving Django's application on ``pool``.

    Call after Django is set up.
    """
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIResource(reactor, pool, with_proxy_prefix(WSGIHandler()))
