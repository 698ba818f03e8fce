"""Links and iframes for the notebook, and the public base URL they use.

The kernel reaches the site on ``http://127.0.0.1:<port>``; a browser may not (a
remote kernel, JupyterHub, a proxy). Links and iframes use the public base URL:

1. ``HANJI_PUBLIC_URL`` if set, e.g. ``https://lab.example.org/proxy/{port}`` or
   ``/proxy/{port}`` (``{port}`` is replaced by the port Hanji listens on);
2. else, under JupyterHub, jupyter-server-proxy's path
   ``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>``;
3. else the local URL.

Calls from Python (``hanji.get``, ``hanji.url``) always use the local URL.

The iframe of ``hanji.show`` and the banner's link carry a one-time ``?ticket=``,
not the access token (see :mod:`hanji.server.security.access`), so that a saved
notebook holds no token. A small script in the output points them at the page's
own loopback name (``localhost`` or ``127.0.0.1``), so that the frame is same-site
with the notebook and gets the access cookie. When Hanji stops, these outputs are
replaced by a note saying so (:func:`display_live`).
"""

from __future__ import annotations

import html
import os
import uuid
from typing import Any, Callable
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


def applet_page(base: str, applet_id: str, token: str | None = None, *, ticket: str | None = None) -> str:
    """Return the URL of the home page focused on one applet's card, with the
    access token or a one-time ticket if given (the first visit sets the
    browser's cookie)."""
    quoted = quote(applet_id, safe="")
    url = with_token(f"{base}/?applet={quoted}", token)
    return with_query(url, "ticket", ticket) + f"#applet-{quoted}"


def with_token(url: str, token: str | None) -> str:
    """Return ``url`` with ``?token=…`` added when a token is given."""
    return with_query(url, "token", token)


def with_query(url: str, name: str, value: str | None) -> str:
    """Return ``url`` with ``?name=value`` added when a value is given."""
    if not value:
        return url
    return f"{url}{'&' if '?' in url else '?'}{name}={quote(value, safe='')}"


# Point the output's links and frame (data-hanji-url) at the notebook page's own
# loopback name, so that the frame is same-site with the page and gets the
# SameSite cookie; other URLs (a proxy, HANJI_PUBLIC_URL) are kept as they are.
# The frame's src is set here only: a second load would spend its ticket.
_SAME_SITE_SCRIPT = """<script>(function () {
  var box = document.currentScript && document.currentScript.parentNode;
  if (!box) { return; }
  var loopback = /^(localhost|127\\.0\\.0\\.1|\\[::1\\])$/;
  function local(raw) {
    try {
      var url = new URL(raw);
      if (loopback.test(url.hostname) && loopback.test(location.hostname)) { url.hostname = location.hostname; }
      return url.href;
    } catch (e) { return raw; }
  }
  box.querySelectorAll("[data-hanji-url]").forEach(function (el) {
    el.setAttribute(el.tagName === "IFRAME" ? "src" : "href", local(el.getAttribute("data-hanji-url")));
  });
})();</script>"""


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


def applet_frame(applet_id: str, name: str, url: str, height: int = 360, *,
                 link_url: str | None = None) -> Inline:
    """Return an iframe of ``url`` with a link to ``link_url`` (default ``url``)
    to open it beside it; the script of :data:`_SAME_SITE_SCRIPT` sets the frame's
    source."""
    shown = link_url or url
    plain = f"Hanji applet '{applet_id}' ({name}): {shown}"
    html_text = (
        f'<div class="hanji-show"><div style="margin-bottom:4px"><b>{html.escape(name)}</b> &middot; '
        f'<a href="{html.escape(shown)}" data-hanji-url="{html.escape(shown)}" target="_blank" '
        f'rel="noopener">open in a new tab ↗</a></div>'
        f'<iframe data-hanji-url="{html.escape(url)}" title="{html.escape(name)}" width="100%" '
        f'height="{int(height)}" style="border:1px solid #ccc;border-radius:4px"></iframe>'
        f"{_SAME_SITE_SCRIPT}</div>"
    )
    return Inline(plain, html_text)


def banner(url: str, message: str, href: str | None = None) -> Inline:
    """Return the one-line start-up banner with a clickable link to ``href``
    (default ``url``, which is the text shown)."""
    plain = message.replace("{url}", url)
    target = html.escape(href or url)
    anchor = (f'<a href="{target}" data-hanji-url="{target}" target="_blank" rel="noopener">'
              f"{html.escape(url)}</a>")
    html_text = ('<div class="hanji-banner">' + html.escape(message).replace("{url}", anchor)
                 + _SAME_SITE_SCRIPT + "</div>")
    return Inline(plain, html_text)


def stopped_note(what: str) -> Inline:
    """Return the note that replaces a frame or banner of a server that has stopped."""
    text = f"Hanji stopped: {what} is gone (%load_ext hanji starts it again)."
    return Inline(text, f'<div class="hanji-stopped" style="color:#777">{html.escape(text)}</div>')


# The live outputs of this kernel (display id -> the note that replaces it when
# Hanji stops); cell thread.
_live: dict[str, Inline] = {}


def display_live(value: Inline, stopped: Inline, on_stop: list[Callable[[], None]]) -> None:
    """Display ``value`` with a display id and arrange for it to be replaced by
    ``stopped`` when Hanji stops (``on_stop``: the session's stop callbacks), so
    that a frame or link of a stopped server says so; cell thread."""
    from IPython.display import display

    display_id = f"hanji-{uuid.uuid4().hex}"
    _live[display_id] = stopped
    if mark_stopped not in on_stop:
        on_stop.append(mark_stopped)
    display(value, display_id=display_id)


def mark_stopped() -> None:
    """Replace every live output of :func:`display_live` by its stopped note; cell thread."""
    from IPython.display import update_display

    while _live:
        display_id, note = _live.popitem()
        try:
            update_display(note, display_id=display_id)
        except Exception:  # no frontend left to update (the kernel is exiting)
            pass
