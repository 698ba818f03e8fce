"""Django's root URLconf: the home page and every active applet's ``urls.py``.

Rebuilt by the server (reactor thread) whenever an applet is activated or removed;
Django's resolver cache is cleared so the next request sees the new table.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, clear_url_caches, include, path

from hanji.django import views

_base = [path("", views.home, name="hanji-home")]
urlpatterns: list[Any] = list(_base)
_owners: dict[int, str] = {}


def rebuild(records: list[Any]) -> None:
    """Rebuild ``urlpatterns`` from the active applet records (any thread)."""
    global urlpatterns
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
    urlpatterns = patterns
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
