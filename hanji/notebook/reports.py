"""Rich notebook views of Hanji's state: status, applets, routes, errors.

Each is a plain Python value (a list or a small object) that prints as a text table
and shows as an HTML table in a notebook. Built on the cell thread from snapshots
that the reactor publishes atomically (:class:`hanji.server.registry.Registry`).
"""

from __future__ import annotations

import html
import time
from typing import Any, Iterable, Sequence

from hanji import _errorlog as _errors
from hanji._errorlog import AppletErrorRecord


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[str, str]:
    """Return ``(text, html)`` renderings of a table."""
    rows = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return "\n".join(lines), f"<table class='hanji-table'><tr>{head}</tr>{body}</table>"


def last_error(applet_id: str, record: Any = None) -> str:
    """Return the last error of an applet in one line ("" if none)."""
    found = _errors.all_errors(applet_id)
    if found:
        return f"{_errors.exception_line(found[-1].traceback)} ({found[-1].where})"
    return _errors.exception_line(getattr(record, "error", None))


class Applets(list):  # type: ignore[type-arg]
    """The applets the server knows, one dict per applet."""

    def _render(self) -> tuple[str, str]:
        return _table(
            ["applet", "state", "version", "from", "resources", "last error", "runs in"],
            [(a["id"], a["state"], f"v{a['version']}", a["source"], " ".join(a["resources"]) or "-",
              a["last_error"] or "-", a.get("where") or "-") for a in self],
        )

    def __repr__(self) -> str:
        return self._render()[0] if self else "No applet."

    def _repr_html_(self) -> str:
        return self._render()[1] if self else "<p>No applet.</p>"


def _state(record: Any) -> str:
    """Return the applet's state, "active, degraded" when it is active but work it
    scheduled failed after its activation (a port it could not open, say)."""
    state = str(record.state)
    if record.is_active and any(e.seq > record.activated_seq for e in _errors.all_errors(record.id)):
        return f"{state}, degraded"
    return state


def applets_of(server: Any) -> Applets:
    """Return the :class:`Applets` view of ``server``'s registry; any thread.

    ``where`` says where each applet's ``on_activate`` runs (hanji.server.placement)."""
    rows = Applets()
    placements = getattr(server, "placements", None)
    for record in sorted(server.registry.snapshot().values(), key=lambda r: r.id):
        rows.append({
            "id": record.id,
            "name": record.applet.name,
            "state": _state(record),
            "version": record.version,
            "source": record.package or "notebook",
            "resources": [f"/res/{record.id}/{p}" for p in record.resources]
            + [f"/ws/{record.id}/{p}" for p in record.websockets],
            "last_error": last_error(record.id, record),
            "where": str(placements.where(record)) if placements is not None and record.is_active else "",
        })
    return rows


class Status:
    """Hanji's state in this kernel, as ``hanji.status()`` and ``%hanji status`` show it."""

    def __init__(self, running: bool, url: str | None, public_url: str | None, reactor: str,
                 reactor_alive: bool, data_dir: str | None, log_path: str | None,
                 applets: Applets, errors: int, stalls: str = "", token: str | None = None) -> None:
        self.running, self.url, self.public_url = running, url, public_url
        self.token = token  # for the HTML view's link, which a browser opens
        self.stalls = stalls
        self.reactor, self.reactor_alive = reactor, reactor_alive
        self.data_dir, self.log_path = data_dir, log_path
        self.applets, self.errors = applets, errors

    def _lines(self) -> list[str]:
        state = f"running at {self.url}/" if self.running else "stopped (%load_ext hanji or %hanji start)"
        lines = [f"Hanji: {state}"]
        if self.running and self.public_url and self.public_url != self.url:
            lines.append(f"public URL: {self.public_url}/")
        lines.append(f"reactor thread {self.reactor}: {'alive' if self.reactor_alive else 'not running'}")
        if self.data_dir:
            lines.append(f"data: {self.data_dir}  log: {self.log_path}")
        lines.append(f"errors recorded: {self.errors} (hanji.errors())")
        if self.stalls:
            lines.append(self.stalls)
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines() + ["", repr(self.applets)])

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self._lines())
        if self.running and self.url:
            from hanji.notebook.display import with_token

            target = (self.public_url or self.url) + "/"
            href = with_token(target, self.token)
            head = head.replace(html.escape(self.url + "/"),
                                f'<a href="{html.escape(href)}" target="_blank">{html.escape(target)}</a>', 1)
        return f"<div class='hanji-status'>{head}{self.applets._repr_html_()}</div>"


class Routes(list):  # type: ignore[type-arg]
    """The routing table, Twisted first; overlaps with Django are marked."""

    def _render(self) -> tuple[str, str]:
        return _table(
            ["url", "served by", "applet", "what", "note"],
            [(r["url"], r["served_by"], r["applet"], r["what"],
              "also matched by Django: Twisted serves it" if r.get("overlaps_django") else "")
             for r in self],
        )

    def __repr__(self) -> str:
        return self._render()[0]

    def _repr_html_(self) -> str:
        return self._render()[1]


class Errors(list):  # type: ignore[type-arg]
    """Recorded applet errors, oldest first, with their full tracebacks."""

    def __repr__(self) -> str:
        if not self:
            return "No error recorded."
        return "\n".join(str(e) for e in self)

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No error recorded.</p>"
        parts = []
        for e in self:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.when))
            parts.append(
                f"<details><summary><b>{html.escape(e.applet_id)}</b> {stamp} in {html.escape(e.where)}: "
                f"{html.escape(_errors.exception_line(e.traceback))}</summary>"
                f"<pre>{html.escape(e.traceback)}</pre></details>"
            )
        return "<div class='hanji-errors'>" + "".join(parts) + "</div>"


def errors_view(records: list[AppletErrorRecord]) -> Errors:
    """Return the :class:`Errors` view of ``records``."""
    return Errors(records)


def _session_token() -> str | None:
    """Return the access token of this kernel's server, or None when not running."""
    from hanji.notebook.session import get_session

    session = get_session()
    return session.token if session.running and session.server is not None else None


class Activation:
    """What ``hanji.activate()`` did: the applet, its version and its URLs.

    The HTML view's links carry ``?token=`` (``token``, by default the running
    server's), so that they open in a browser that never visited the site."""

    def __init__(self, applet_id: str, version: int, state: str, urls: list[str],
                 token: str | None = None) -> None:
        self.id, self.version, self.state, self.urls = applet_id, version, state, urls
        self.token = token if token is not None else _session_token()

    def __repr__(self) -> str:
        where = ", ".join(self.urls) if self.urls else "no resource"
        return f"Applet '{self.id}' v{self.version} {self.state}: {where}"

    def _repr_html_(self) -> str:
        from hanji.notebook.display import with_token

        links = ", ".join(f'<a href="{html.escape(with_token(u, self.token))}" target="_blank">{html.escape(u)}</a>'
                          for u in self.urls)
        return (f"<div class='hanji-activation'>Applet <b>{html.escape(self.id)}</b> v{self.version} "
                f"{html.escape(self.state)}: {links or 'no resource'}</div>")
