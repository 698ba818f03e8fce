"""Build an applet's routes from its web UI; Django worker thread (at activation).

``twisted_dynamic_resources`` become the table mounted at ``/res/<applet_id>/``,
``websocket_resources`` the one at ``/ws/<applet_id>/``, and a packaged applet's
``urls.py`` its Django URLs. Nothing here touches the reactor: the tables are put
in place on the reactor thread by :mod:`hanji.server.lifecycle`.
"""

from __future__ import annotations

import inspect
from typing import Any

from twisted.web.resource import IResource

from hanji.core.utils import TwAppletResource
from hanji.server.registry import AppletRecord
from hanji.server.websocket import websocket_resource


def build_routes(record: AppletRecord, reactor: Any) -> None:
    """Set ``record``'s resources, websockets and URLs module from its web UI;
    Django worker thread. Raise ValueError or TypeError naming the applet and the
    path for a table that cannot be built."""
    from hanji.django.setup import import_optional

    if record.package:
        record.urls_module = import_optional(f"{record.package}.urls")
    record.resources = _table(record, record.web.twisted_dynamic_resources, "resource", reactor)
    record.websockets = _table(record, getattr(record.web, "websocket_resources", []), "websocket", reactor)


def _table(record: AppletRecord, classes: list[Any], kind: str, reactor: Any) -> dict[str, Any]:
    """Build the applet's resources of one kind by path; Django worker thread."""
    table: dict[str, Any] = {}
    for cls in classes or []:
        path = str(getattr(cls, "path", "") or "").strip("/")
        if path in table:
            name = getattr(cls, "__name__", type(cls).__name__)
            raise ValueError(
                f"Applet '{record.id}': two {kind}s at path '{path}' "
                f"({type(table[path]).__name__} and {name}); give each its own path."
            )
        if kind == "websocket":
            table[path] = websocket_resource(record.applet, cls, reactor)
        else:
            table[path] = _resource(record, cls, path)
    return table


def _takes_applet(cls: type) -> bool:
    """Return True if ``cls(applet)`` is a valid call by its signature (a resource
    class of the seed's kind), False if it takes no argument (a plain twisted.web
    resource class)."""
    try:
        inspect.signature(cls).bind(None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): try the applet
        return True
    return True


def _resource(record: AppletRecord, cls: Any, path: str) -> Any:
    """Build one resource of ``twisted_dynamic_resources``: a TwAppletResource class
    (built with the applet), another twisted.web resource class (built with the
    applet if its constructor takes one argument, else without) or a resource
    instance; Django worker thread. An error raised by the constructor itself
    propagates: it is the applet's bug, not a sign to try another call."""
    if not isinstance(cls, type):
        if IResource.providedBy(cls):
            return cls
    elif issubclass(cls, TwAppletResource):
        return cls(record.applet)
    elif IResource.implementedBy(cls):
        factory: Any = cls
        res = factory(record.applet) if _takes_applet(cls) else factory()
        if getattr(res, "applet", None) is None:
            res.applet = record.applet
        return res
    raise TypeError(
        f"Applet '{record.id}': {cls!r} in twisted_dynamic_resources (path '{path}') is not a "
        "twisted.web resource; list TwAppletResource subclasses, resource classes or instances."
    )
