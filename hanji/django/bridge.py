"""The WSGI bridge: Django's application served on the Django pool, with one
hand-off to the pool per request and one back for a response that is not streamed.

:class:`DjangoResource` renders on the reactor thread: it refuses a request with 503
at once while the pool is full, else builds the request's WSGI environ there
(:mod:`hanji.django._environ`: the body is already buffered, Hanji's credential is
taken out, the proxy prefix goes into ``SCRIPT_NAME``, ``environ["hanji.server"]``
names the server) and submits one job to the pool. The worker runs Django and
answers through :class:`hanji.django._exchange.Exchange`: one ``callFromThread`` for
a whole response, chunk by chunk with the transport's flow control for a stream.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from hanji.django._environ import (
    ENVIRON_KEY, PREFIX_HEADERS, TOKEN_HEADER_KEY, base_environ, build_environ, proxy_prefix,
)
from hanji.django._exchange import Exchange
from hanji.django.pool import DjangoPool
from hanji.server.http import answers

__all__ = ["ENVIRON_KEY", "PREFIX_HEADERS", "TOKEN_HEADER_KEY", "DjangoResource", "proxy_prefix",
           "wsgi_resource"]


@implementer(IResource)
class DjangoResource:
    """The resource that hands every request under it to Django's WSGI application
    on ``pool``; reactor thread.

    ``server`` is the HanjiServer its views see (``environ["hanji.server"]``) and
    whose token is taken out of what Django sees; ``stall_timeout`` is how long a
    streamed answer waits for a client that reads nothing before its connection is
    aborted (None: forever).
    """

    isLeaf = True

    def __init__(self, reactor: Any, pool: DjangoPool, application: Any, server: Any = None,
                 stall_timeout: float | None = None) -> None:
        self._reactor = reactor
        self._pool = pool
        self._application = application
        self._server = server
        self._stall_timeout = stall_timeout
        self._base = base_environ(server)

    def render(self, request: Any) -> Any:
        """Hand the request to a Django worker, or refuse it with 503 if the pool
        is full; reactor thread."""
        pool = self._pool
        if pool.full():
            method = request.method.decode("ascii", "replace")
            error = pool.overloaded(f"{method} {request.path.decode('utf-8', 'replace')}")
            return answers.answer(request, 503, str(error),
                                  {b"retry-after": str(error.retry_after).encode("ascii")})
        # Django sets every header it wants; twisted.web adds no text/html of its own.
        request.defaultContentType = None
        environ = build_environ(request, self._base, getattr(self._server, "token", None))
        exchange = Exchange(self._reactor, request, self._application, environ, self._stall_timeout)
        pool.submit(None, exchange.run)
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: Any) -> Any:
        """Refuse: every path under this resource is Django's (it is a leaf)."""
        raise RuntimeError("DjangoResource has no child resources: Django routes every path under it.")

    def putChild(self, path: bytes, child: Any) -> None:
        """Refuse: every path under this resource is Django's."""
        raise RuntimeError("DjangoResource takes no child resources: Django routes every path under it.")


def wsgi_resource(reactor: Any, pool: DjangoPool, server: Any = None) -> DjangoResource:
    """Return the resource serving Django's application on ``pool`` for ``server``
    (the HanjiServer its views and middleware see), refusing requests with 503
    while the pool's queue is full; streamed answers to a client that reads nothing
    for the server's idle timeout are cut.

    Call after Django is set up.
    """
    from django.core.handlers.wsgi import WSGIHandler

    limits = getattr(server, "limits", None)
    stall = getattr(limits, "idle_timeout", None)
    return DjangoResource(reactor, pool, WSGIHandler(), server, stall)
