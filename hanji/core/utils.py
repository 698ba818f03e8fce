"""Helpers for applet authors: :class:`TwAppletResource` and :class:`TwAppletWebSocket`."""

from __future__ import annotations

from typing import Any, ClassVar

from twisted.web.error import UnsupportedMethod
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from hanji.server.render import render_with_contract

__all__ = ["NOT_DONE_YET", "TwAppletResource", "TwAppletWebSocket", "WebSocketRefused", "defer_to_django"]


class TwAppletResource(Resource):
    """A twisted.web resource of an applet, mounted at ``/res/<applet_id>/<path>``.

    Built with the applet instance (``self.applet``). ``path`` may contain ``/``;
    set ``isLeaf = True`` to also receive the URLs below it (the rest is in
    ``request.postpath``). Render methods run on the reactor thread and must not
    block; they may return bytes, str, a dict or list (JSON), a Deferred, a
    coroutine or ``NOT_DONE_YET``. ``request.args`` also accepts str keys.
    ``max_body`` (bytes) replaces the server's body limit (``--max-body``) for
    this resource: a larger body is refused with 413 before it is read.
    """

    path: ClassVar[str] = ""
    content_type: ClassVar[str | None] = None
    max_body: ClassVar[int | None] = None

    def __init__(self, applet: Any = None) -> None:
        super().__init__()
        self.applet = applet

    def render(self, request: Any) -> Any:
        """Dispatch to ``render_<METHOD>`` under Hanji's render contract; reactor thread."""
        method = request.method.decode("ascii", "replace")
        if method == "HEAD" and type(self).render_HEAD is Resource.render_HEAD:
            handler = getattr(self, "render_GET", None)  # Twisted's HEAD: GET without the body
        else:
            handler = getattr(self, "render_" + method, None)
        if handler is None:
            raise UnsupportedMethod(self._allowed_methods())  # 405 with the Allow header
        return render_with_contract(self, request, handler)

    def _allowed_methods(self) -> list[bytes]:
        """Return the methods this resource renders (HEAD only if it has GET)."""
        explicit = getattr(self, "allowedMethods", None)
        if explicit is not None:
            return list(explicit)
        names = {n[len("render_"):] for n in dir(type(self)) if n.startswith("render_") and n[7:].isupper()}
        if "GET" not in names:
            names.discard("HEAD")
        return sorted(n.encode("ascii") for n in names)


def __getattr__(name: str) -> Any:
    # The websocket base lives with the server's websocket support; import it lazily
    # so ``hanji.core.utils`` stays cheap to import.
    if name in ("TwAppletWebSocket", "WebSocketRefused"):
        from hanji.server import websocket

        return getattr(websocket, name)
    raise AttributeError(name)


def defer_to_django(f: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking Django code (ORM, templates) in the Django pool and return a
    Deferred of its result; call it on the reactor thread, e.g. from a render method.

    Like every Django pool job it runs between two ``close_old_connections()``
    calls, as a Django request does, so it never gets or leaves a stale connection.
    If the pool's queue is full (``--django-queue``) the Deferred fails at once with
    :class:`~hanji._exceptions.DjangoPoolFull`, which the render contract answers
    with 503 and Retry-After.
    """
    from twisted.internet.threads import deferToThreadPool

    from hanji._threads import assert_reactor_thread
    from hanji.server.runtime import current

    assert_reactor_thread("defer_to_django()")
    server = current()
    if server is None:
        from hanji._exceptions import ServerNotRunning

        raise ServerNotRunning("defer_to_django() needs a running Hanji server.")

    if server.pool.full():
        from twisted.internet import defer

        name = getattr(f, "__qualname__", None) or repr(f)
        return defer.fail(server.pool.overloaded(f"defer_to_django({name})"))
    return deferToThreadPool(server.reactor, server.pool, f, *args, **kwargs)
