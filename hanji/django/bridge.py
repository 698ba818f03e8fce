"""The WSGI bridge: Django behind ``twisted.web.wsgi.WSGIResource`` on the Django pool.

The resource renders on the reactor thread and hands each request to the pool
(:mod:`hanji.django.pool`), refusing it with 503 at once while the pool is full; the
WSGI application (Django's handler, wrapped to know the proxy prefix and the Hanji
server) runs in the pool's threads.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from twisted.web.wsgi import WSGIResource

from hanji.django.pool import DjangoPool
from hanji.server.http import answers

# The WSGI environ key under which Django code finds the HanjiServer serving it.
ENVIRON_KEY = "hanji.server"

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


# Set in the environ when the request carried Hanji's token in a header (so Django's
# CSRF check may skip it: a browser never adds that header by itself).
TOKEN_HEADER_KEY = "hanji.token_header"


def _take_hanji_credential(environ: dict[str, Any], token: str | None) -> None:
    """Remove Hanji's own credential from a request before Django sees it (an
    ``Authorization`` holding Hanji's token would reach DRF's TokenAuthentication as
    an invalid token), noting that it was there; any other ``Authorization`` is
    left untouched. Django pool."""
    from hanji.server.security import access

    found = False
    own = environ.pop(access.WSGI_HEADER, None)
    if token and own is not None and access.header_has_token(f"token {own.strip()}", token):
        found = True
    if token and access.header_has_token(environ.get("HTTP_AUTHORIZATION"), token):
        del environ["HTTP_AUTHORIZATION"]
        found = True
    environ[TOKEN_HEADER_KEY] = found


def hanji_application(app: Any, server: Any) -> Any:
    """Wrap a WSGI app so Django builds URLs under the proxy prefix (``reverse``,
    redirects, ``{{ hanji_base }}``) and finds the Hanji server that serves it in
    ``environ["hanji.server"]`` (:data:`ENVIRON_KEY`); runs in the Django pool."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        environ[ENVIRON_KEY] = server
        _take_hanji_credential(environ, getattr(server, "token", None))
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
        self._pool.submit(None, func, *args, **kw)


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
            return answers.answer(request, 503, str(error),
                                  {b"retry-after": str(error.retry_after).encode("ascii")})
        return super().render(request)


def wsgi_resource(reactor: Any, pool: DjangoPool, server: Any = None) -> WSGIResource:
    """Return the WSGIResource serving Django's application on ``pool`` for
    ``server`` (the HanjiServer its views and middleware see), refusing requests
    with 503 while the pool's queue is full.

    Call after Django is set up.
    """
    from django.core.handlers.wsgi import WSGIHandler

    return _DjangoResource(reactor, pool, hanji_application(WSGIHandler(), server))
