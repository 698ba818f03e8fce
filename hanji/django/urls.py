"""Django's root URLconf: the home page and every active applet's ``urls.py``.

At import it holds the URLs of every installed applet package, so that Django's own
tools see them without a running server (``hanji manage test``, ``reverse()``,
``runserver``). The server rebuilds it (reactor thread) whenever an applet is
activated or removed; Django's resolver cache is cleared so the next request sees
the new table.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import URLPattern, URLResolver, clear_url_caches, include, path

from hanji.django import views

_base = [path("", views.home, name="hanji-home"), path("admin/", admin.site.urls)]
urlpatterns: list[Any] = list(_base)
_owners: dict[int, str] = {}


def rebuild(records: list[Any]) -> None:
    """Rebuild ``urlpatterns`` from the active applet records (any thread)."""
    patterns: list[Any] = list(_base)
    owners: dict[int, str] = {}
    # Applets mounted at a prefix first, root-mounted ones last, so a root applet
    # cannot hide another applet's prefix.
    for record in sorted(records, key=lambda r: r.url_prefix == ""):
        module = record.urls_module
        if module is None or not hasattr(module, "urlpatterns"):
            continue
        pattern = path(record.url_prefix, include(module))
        owners[id(pattern)] = record.id
        patterns.append(pattern)
    _owners.clear()
    _owners.update(owners)
    # In place, not rebound: a project's ROOT_URLCONF that include()s this module
    # holds on to this very list.
    urlpatterns[:] = patterns
    clear_url_caches()


def _walk(patterns: list[Any], prefix: str) -> list[tuple[str, str]]:
    rows = []
    for p in patterns:
        if isinstance(p, URLResolver):
            rows.extend(_walk(p.url_patterns, prefix + str(p.pattern)))
        elif isinstance(p, URLPattern):
            callback = getattr(p.callback, "__name__", repr(p.callback))
            rows.append(("/" + prefix + str(p.pattern), f"view {callback}"))
    return rows


def describe() -> list[tuple[str, str, str]]:
    """Return ``(url pattern, applet id, view)`` rows of the current URLconf."""
    rows = []
    for p in urlpatterns:
        owner = _owners.get(id(p), "hanji")
        for url, what in _walk([p], ""):
            rows.append((url, owner, what))
    return rows


def _installed_records() -> list[Any]:
    """Return records of the installed applet packages with their ``urls`` modules
    (blocking imports: at the URLconf's first import, in Django's start-up)."""
    import logging
    import os
    from pathlib import Path

    from django.apps import apps

    from hanji.django.setup import import_optional
    from hanji.server.registry import load_package

    records = []
    for package in [p for p in os.environ.get("HANJI_INSTALLED_APPLETS", "").split(",") if p]:
        try:
            record = load_package(package, Path(apps.get_app_config(package.rsplit(".", 1)[-1]).path))
            record.urls_module = import_optional(f"{package}.urls")
        except Exception:
            # The server reports the applet's failure when it activates it.
            logging.getLogger("hanji.server").debug("No URLs for applet package %s.", package, exc_info=True)
            continue
        records.append(record)
    return records


rebuild(_installed_records())
