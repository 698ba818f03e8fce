"""Django behind ``twisted.web.wsgi.WSGIResource``, on Hanji's own thread pool.

The pool is not the reactor's shared one (which also resolves DNS): its threads are
named ``HanjiDjango-N`` and are daemon threads, so a request stuck past the drain
deadline cannot keep the process (or a kernel) from exiting.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from twisted.python.threadpool import ThreadPool
from twisted.web.wsgi import WSGIResource


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


class DjangoPool(ThreadPool):
    """The Django worker pool; start and stop it from the reactor thread."""

    threadFactory = staticmethod(_daemon_thread)  # type: ignore[assignment]
    _names = itertools.count(1)

    def __init__(self, size: int = 10) -> None:
        super().__init__(minthreads=1, maxthreads=max(1, size), name="HanjiDjango")

    def _generateName(self) -> str:
        return f"HanjiDjango-{next(self._names)}"

    def stop_without_waiting(self) -> None:
        """Ask every worker to quit without joining them (a stuck worker stays
        behind as a daemon thread); any thread."""
        self.joined = True
        self.started = False
        self._team.quit()


def wsgi_resource(reactor: Any, pool: ThreadPool) -> WSGIResource:
    """Return the WSGIResource serving Django's application on ``pool``.

    Call after Django is set up.
    """
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIResource(reactor, pool, WSGIHandler())
