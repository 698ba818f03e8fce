"""Applets and their web UIs: the classes every applet package uses.

An applet package exposes an ``Applet`` instance named ``applet`` (or a subclass named
``Applet``) and a ``WebUI`` instance named ``web`` (or a subclass named ``WebUI``), in
its ``__init__.py`` or its ``webUI.py``. Hanji imports it as a Django app, calls
``on_activate()`` in a Django worker thread and mounts the web UI's resources.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from hanji._threads import in_reactor_thread
from hanji.core._context import OpenedThings, run_as

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort
    from django.http import HttpRequest


def _global_reactor() -> Any:
    """Return Twisted's global reactor, the one the seed's code calls (imported
    here, not at import time, so that importing the applet model installs none)."""
    from twisted.internet import reactor

    return reactor


class Placement(enum.StrEnum):
    """Where an applet's ``on_activate`` runs when Hanji runs as several processes
    (``hanji serve --workers N``, several hosts); compares equal to its value.

    ``EVERY`` ("every"): in every worker process, the default, right for web code
    (resources, websockets, Django views), which every worker serves anyway.
    ``ONE`` ("one"): in exactly one process of the whole set, for protocols on a
    fixed port, timers and background jobs; the process holding the applet's lease
    runs it, the others stand by and take over if it dies. Its web UI is still
    served by every process. A notebook kernel is one process: it runs both.
    """

    EVERY = "every"
    ONE = "one"


class Applet:
    """One feature of a Hanji site.

    Attributes:
        id: the applet's id in URLs (``/res/<id>/…``); defaults to the package name
            (or, for a class defined in a notebook, the class name in snake_case).
        name, description: shown on the home page.
        url_prefix: where the applet's Django ``urls.py`` is mounted; ``None`` means
            ``applets/<id>/`` and ``""`` the site root.
        icon: file name in the applet's ``static/`` folder shown on the home page.
        placement: where ``on_activate`` runs across processes and hosts:
            ``Placement.EVERY`` (or ``"every"``, the default) or ``Placement.ONE``
            (``"one"``: exactly one process, through a lease; see :class:`Placement`).
    """

    id: str | None = None
    name: str | None = None
    description: str = ""
    url_prefix: str | None = None
    icon: str = "icon.png"
    placement: Placement | str = Placement.EVERY

    def __init__(
        self,
        id: str | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if id is not None:
            self.id = id
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description
        self._hanji_opened = OpenedThings()

    # -- hooks ---------------------------------------------------------------

    def on_activate(self) -> None:
        """Start the applet; runs in a Django worker thread, never the reactor's.

        Reach the reactor with ``reactor.callFromThread`` or the helpers below;
        what is opened either way is closed when the applet is deactivated.
        """

    def on_deactivate(self) -> None:
        """Stop the applet; runs in a Django worker thread, before Hanji closes
        the ports, connections and timers the applet opened."""

    # -- helpers that track what they open ----------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """Return the applet's logger, ``hanji.applet.<id>``."""
        return logging.getLogger(f"hanji.applet.{self.id}")

    def _on_reactor(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``f`` on the reactor thread as this applet, from any thread, and
        return its result (blocking the calling thread if it is not the reactor's)."""
        if in_reactor_thread():
            return run_as(self, f, *args, **kwargs)
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(_global_reactor(), run_as, self, f, *args, **kwargs)

    def listen_tcp(
        self, port: int, factory: Any, backlog: int = 50, interface: str = ""
    ) -> IListeningPort:
        """Listen on a TCP port for this applet (any thread); closed at deactivation.

        Return the listening port (``.getHost().port`` gives the number when
        ``port`` is 0).
        """
        return self._on_reactor(_global_reactor().listenTCP, port, factory, backlog, interface)

    def connect_tcp(self, host: str, port: int, factory: Any, timeout: float = 30) -> Any:
        """Open a TCP client connection for this applet (any thread); closed at
        deactivation. Return the connector."""
        return self._on_reactor(_global_reactor().connectTCP, host, port, factory, timeout)

    def call_later(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Schedule ``f`` on the reactor after ``delay`` seconds (any thread);
        cancelled at deactivation. Return the DelayedCall."""
        return self._on_reactor(_global_reactor().callLater, delay, f, *args, **kwargs)

    @property
    def ports(self) -> list[int]:
        """Return the numbers of the TCP/UDP ports this applet listens on (any thread)."""
        return [p.getHost().port for p in list(self._hanji_opened.ports) if hasattr(p, "getHost")]

    def on_close(self, close: Any) -> None:
        """Register a callable run on the reactor thread at deactivation (any thread)."""
        self._on_reactor(self._hanji_opened.record, "closable", close)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r}>"


class WebUI:
    """The web side of an applet.

    Attributes:
        twisted_dynamic_resources: TwAppletResource classes (or any twisted.web
            resource class taking the applet), mounted at ``/res/<id>/<path>``.
        websocket_resources: TwAppletWebSocket classes, mounted at ``/ws/<id>/<path>``.
        template_name: the template in the applet's ``templates/`` folder rendered on
            the home page (default ``content.html``).
        template: inline Django template source used instead (handy in a notebook).
    """

    twisted_dynamic_resources: ClassVar[list[Any]] = []
    websocket_resources: ClassVar[list[Any]] = []
    template_name: ClassVar[str] = "content.html"
    template: ClassVar[str | None] = None

    def __init__(self, applet: Applet | None = None) -> None:
        self.applet = applet

    def get_context(self, request: HttpRequest | None = None) -> dict[str, Any]:
        """Return the template context; runs in a Django worker thread."""
        return {"applet": self.applet, "web": self, "request": request}

    def render(self, request: HttpRequest | None = None) -> str:
        """Render the applet's content template to HTML; runs in a Django worker thread."""
        from hanji.django.webui import render_webui

        return render_webui(self, request)
