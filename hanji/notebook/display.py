"""Links and iframes for the notebook, and the public base URL they use.

The kernel reaches the site on ``http://127.0.0.1:<port>``; a browser may not (a
remote kernel, JupyterHub, a proxy). Links and iframes use the public base URL:

1. ``HANJI_PUBLIC_URL`` if set, e.g. ``https://lab.example.org/proxy/{port}`` or
   ``/proxy/{port}`` (``{port}`` is replaced by the port Hanji listens on);
2. else, under JupyterHub, jupyter-server-proxy's path
   ``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>``;
3. else the local URL.

Calls from Python (``hanji.get``, ``hanji.url``) always use the local URL.
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import quote


def public_base(local_url: str, port: int) -> str:
    """Return the base URL (no trailing slash) that a browser should use; pure."""
    explicit = os.environ.get("HANJI_PUBLIC_URL", "").strip()
    if explicit:
        return explicit.replace("{port}", str(port)).rstrip("/")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").strip()
    if prefix:
        return f"{prefix.rstrip('/')}/proxy/{port}"
    return local_url.rstrip("/")


def applet_page(base: str, applet_id: str, token: str | None = None) -> str:
    """Return the URL of the home page focused on one applet's card, with the
    access token if one is given (the first visit sets the browser's cookie)."""
    quoted = quote(applet_id, safe="")
    return with_token(f"{base}/?applet={quoted}", token) + f"#applet-{quoted}"


def with_token(url: str, token: str | None) -> str:
    """Return ``url`` with ``?token=…`` added when a token is given."""
    if not token:
        return url
    return f"{url}{'&' if '?' in url else '?'}token={quote(token, safe='')}"


def link(url: str, text: str | None = None) -> str:
    """Return an HTML link that opens ``url`` in a new tab."""
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(text or url)}</a>'


class Inline:
    """A rich notebook value: an HTML view with a plain-text fallback."""

    def __init__(self, plain: str, html_text: str) -> None:
        self.plain, self.html = plain, html_text

    def __repr__(self) -> str:
        return self.plain

    def _repr_html_(self) -> str:
        return self.html

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.plain, "text/html": self.html}


def applet_frame(applet_id: str, name: str, url: str, height: int = 360) -> Inline:
    """Return an iframe of ``url`` with a link to open it beside it."""
    plain = f"Hanji applet '{applet_id}' ({name}): {url}"
    html_text = (
        f'<div class="hanji-show"><div style="margin-bottom:4px"><b>{html.escape(name)}</b> '
        f"&middot; {link(url, 'open in a new tab ↗')}</div>"
        f'<iframe src="{html.escape(url)}" title="{html.escape(name)}" width="100%" '
        f'height="{int(height)}" style="border:1px solid #ccc;border-radius:4px"></iframe></div>'
    )
    return Inline(plain, html_text)


def banner(url: str, message: str, href: str | None = None) -> Inline:
    """Return the one-line start-up banner with a clickable link to ``href``
    (default ``url``, which is the text shown)."""
    plain = message.replace("{url}", url)
    anchor = f'<a href="{html.escape(href or url)}" target="_blank" rel="noopener">{html.escape(url)}</a>'
    html_text = '<div class="hanji-banner">' + html.escape(message).replace("{url}", anchor) + "</div>"
    return Inline(plain, html_text)
