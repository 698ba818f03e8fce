"""The routing table as users read it (``%hanji routes``, ``hanji.routes()``) and the
Twisted/Django overlap check; any thread (pure computation on imported modules).

A URL that both Twisted and Django serve is served by Twisted; the server logs each
such overlap when the applets are activated.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from hanji.server.registry import Registry

log = logging.getLogger("hanji.server")


def django_matches(path: bytes) -> bool:
    """Return True if Django's URLconf resolves ``path`` (raw, maybe with a query);
    any thread, no I/O."""
    from django.urls import Resolver404, resolve

    try:
        # What Django resolves is the decoded path (its PATH_INFO).
        resolve(unquote(path.decode("utf-8", "replace").split("?")[0]))
    except Resolver404:
        return False
    except Exception:
        return False
    return True


def route_table(registry: Registry) -> list[dict[str, Any]]:
    """Return the routing table of the active applets, Twisted before Django,
    overlaps marked; any thread."""
    rows: list[dict[str, Any]] = [
        {"url": "/static/hanji/", "served_by": "twisted", "applet": "hanji", "what": "static files"}
    ]
    for record in registry.active():
        if record.static_dir:
            rows.append({"url": f"/static/{record.id}/", "served_by": "twisted",
                         "applet": record.id, "what": "static files"})
        for kind, prefix, table in (("resource", "res", record.resources),
                                    ("websocket", "ws", record.websockets)):
            for path, res in table.items():
                url = f"/{prefix}/{record.id}/{path}"
                rows.append({"url": url, "served_by": "twisted", "applet": record.id,
                             "what": f"{kind} {type(res).__name__}",
                             "overlaps_django": django_matches(url.encode())})
    from hanji.django import urls

    for url, applet_id, what in urls.describe():
        rows.append({"url": url, "served_by": "django", "applet": applet_id, "what": what})
    for row in rows:
        row.setdefault("overlaps_django", False)
    return rows


def log_overlaps(registry: Registry) -> list[str]:
    """Log every URL served by Twisted that Django also matches; return them."""
    overlaps = [r["url"] for r in route_table(registry) if r["overlaps_django"]]
    for url in overlaps:
        log.warning("URL %s is defined in both Twisted and Django; Twisted serves it.", url)
    return overlaps
