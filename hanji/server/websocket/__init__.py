"""Websocket endpoints of applets, on the reactor thread.

An applet lists ``TwAppletWebSocket`` subclasses in ``WebUI.websocket_resources``;
:func:`websocket_resource` turns each into a resource that the site mounts at
``/ws/<applet_id>/<path>``. Every connection gets its own instance, built with the
applet, whose hooks run on the reactor thread::

    class Echo(TwAppletWebSocket):
        path = "echo"

        def on_message(self, message):
            self.send(message)

This is built on ``twisted.web.websocket`` (handshake, framing, reassembly of
fragmented messages) and adds what it lacks:

- checks before the handshake (origin, capacity, ``accept()``) answered with a
  clean HTTP status instead of a 500 (``_ws_endpoint``);
- a message size limit (close code 1009) enforced while the message arrives, the
  close code of every connection given to ``on_close(code)``, a proper closing
  handshake, idle pings and dead peers dropped (``_ws_link``);
- ``broadcast()`` and ``send()`` callable from any thread (``TwAppletWebSocket``);
  a broadcast goes through the server's bus (:mod:`hanji.server.bus`) to every
  process, and its writes start as it goes (:mod:`.fanout`);
- connections closed (1001) when the applet is deactivated or the server stops.

Invalid UTF-8 in a text message is caught by wsproto, which closes with 1007.

Modules: :class:`~hanji.core.utils.TwAppletWebSocket` (in ``hanji.core``) is what
applets subclass; here, :mod:`.endpoint` is the HTTP side (the mounted resource) and
:mod:`.link` the wire side of one connection, :mod:`.fanout` one message to many; the origin rule is
:mod:`hanji.server.security.origin`. All run on the reactor thread only.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

from twisted.web.resource import IResource

from hanji.core.utils import TwAppletWebSocket

__all__ = ["websocket_resource"]


def websocket_resource(applet: Any, ws_class: type[TwAppletWebSocket], reactor: Any = None) -> IResource:
    """Return the resource serving ``ws_class`` for ``applet`` at ``/ws/<id>/<path>``.

    Called at activation in a Django worker thread; touches no reactor state.
    Raise TypeError if ``ws_class`` is not a TwAppletWebSocket subclass.
    """
    if not (inspect.isclass(ws_class) and issubclass(ws_class, TwAppletWebSocket)):
        raise TypeError(
            f"Applet '{getattr(applet, 'id', '?')}': websocket_resources lists {ws_class!r}, "
            "which is not a subclass of hanji.core.utils.TwAppletWebSocket."
        )
    if int(ws_class.max_message_size) <= 0:
        raise ValueError(f"{ws_class.__name__}.max_message_size must be a positive number of bytes.")
    from hanji.server.websocket.endpoint import Endpoint

    return cast(IResource, Endpoint(applet, ws_class, reactor))
