"""Render an applet's web UI template; Django worker thread (or any non-reactor thread).

Every applet has its own ``templates/content.html``; Django's app-directories loader
would find only the first one, so the file is read from the applet's own folder. An
applet without one has no web UI content: the default name is never looked up through
Django's loaders, which would hand it another applet's ``content.html``. A
``template_name`` other than the default is looked up there too (a project template).
"""

from __future__ import annotations

from typing import Any

from django.template import engines

_DEFAULT_NAME = "content.html"


def _source(web: Any) -> str | None:
    if getattr(web, "template", None):
        return str(web.template)
    # The applet's own templates/ folder, set by the registry when it built the
    # applet's record (None for an applet defined in a notebook).
    folder = getattr(web, "_hanji_template_dir", None)
    if folder is not None:
        candidate = folder / web.template_name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def render_webui(web: Any, request: Any = None) -> str:
    """Return the HTML of ``web``'s content template, with ``applet`` in the context
    ('' for an applet that has none)."""
    engine = engines["django"]
    source = _source(web)
    if source is not None:
        template = engine.from_string(source)
    elif web.template_name != _DEFAULT_NAME:
        template = engine.get_template(web.template_name)
    else:
        return ""
    return template.render(web.get_context(request), request)
