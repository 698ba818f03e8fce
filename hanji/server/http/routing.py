"""Routing: which resource serves a URL, on the reactor thread.

Routing order (first match wins):

    /static/hanji/…          Hanji's JS and CSS
    /static/<applet_id>/…    the applet's static/ folder
    /res/<applet_id>/<path>  TwAppletResource (Twisted, reactor thread)
    /ws/<applet_id>/<path>   websocket endpoints (reactor thread)
    everything else          Django, through WSGIResource on the Django pool

Under ``/static``, ``/res`` and ``/ws`` a URL that Twisted does not serve goes to
Django if Django's URLconf matches it; otherwise it is a 404 that names the applets.

Before routing, every request but those for Hanji's own assets must pass the access
token check (:mod:`hanji.server.security.access`), and unsafe methods on ``/res`` the
CSRF check (:mod:`hanji.server.security.csrf`); a refusal is a 403 with the reason.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from twisted.web import resource

from hanji._exceptions import AppletNotFound
from hanji.server.http import answers, static
from hanji.server.security import access, csrf

if TYPE_CHECKING:
    from hanji.server.runtime import HanjiServer


def _segments(request: Any) -> list[str]:
    return [s.decode("utf-8", "replace") for s in request.postpath]


def match(table: Any, segments: list[str]) -> tuple[Any, int] | None:
    """Return ``(resource, n)``: the resource at the longest path in ``table`` that
    is a prefix of ``segments`` (n segments long), or None. A resource that matches
    only a prefix must be a leaf, or have children or its own ``getChild`` (then
    twisted.web's traversal goes on below it)."""
    for n in range(len(segments), -1, -1):
        res = table.get("/".join(segments[:n]))
        if res is None:
            continue
        if n == len(segments) or getattr(res, "isLeaf", False) or _has_children(res):
            return res, n
    return None


def _has_children(res: Any) -> bool:
    return bool(getattr(res, "children", None)) or type(res).getChild is not resource.Resource.getChild


class HanjiRoot(resource.Resource):
    """The root resource: dispatch by the first path segment; reactor thread."""

    def __init__(self, hanji_server: HanjiServer) -> None:
        super().__init__()
        self.hanji = hanji_server
        self.hanji_static = static.folder(static.HANJI_STATIC)
        # The other Django apps' static files (admin, rest_framework...) by their
        # namespace folder, listed at Django's start-up (hanji.django.staticfiles).
        setup = getattr(hanji_server, "setup", None)
        self.app_static = {name: static.folder(path)
                           for name, path in (getattr(setup, "app_static", None) or {}).items()}

    def getChildWithDefault(self, name: bytes, request: Any) -> Any:
        refused = self._refused(name, request)
        if refused is not None:
            return refused
        child = None
        if name == b"static":
            child = self._static(request)
        elif name == b"res":
            child = self._mounted(request, "resources", "/res")
        elif name == b"favicon.ico" and not request.postpath:
            child = self.hanji_static.getChild(b"favicon.png", request)
        elif name == b"ws":
            child = self._mounted(request, "websockets", "/ws")
        if child is None:
            return self._django(request)
        return child

    def render(self, request: Any) -> Any:
        refused = self._refused(b"", request)
        if refused is not None:
            return refused.render(request)
        return self._django(request).render(request)

    def _refused(self, name: bytes, request: Any) -> Any:
        """Return a 403 resource if the request lacks the access token (every route
        but Hanji's own assets) or, for an unsafe method on /res, fails the CSRF
        check, or names a Host that is not the server's (``allowed_hosts``); else
        None. Reactor thread."""
        reason = access.host_refusal(request, self.hanji.allowed_hosts)
        if reason is not None:
            return answers.forbidden(reason)
        if self.hanji.token is None:
            request.hanji_auth = access.OPEN
        elif not access.is_open_path([name, *request.postpath]):
            if access.authenticate(request, self.hanji.token, self.hanji.port) is None:
                return access.refusal(request)
        if name == b"res":
            reason = csrf.refusal(request)
            if reason is not None:
                path = request.path.decode("utf-8", "replace")
                return answers.forbidden(f"{request.method.decode('ascii', 'replace')} {path}: {reason}")
        return None

    def peek(self, uri: bytes) -> tuple[Any, str | None]:
        """Return the resource mounted under ``/res`` or ``/ws`` that a request for
        ``uri`` would reach, and its applet's id; ``(None, applet_id or None)`` for
        anything else (static files, Django, not found). Reactor thread; unlike
        traversal it changes nothing, so it can run before the body arrives."""
        path = uri.split(b"?", 1)[0]
        parts = [unquote_to_bytes(p) for p in path[1:].split(b"/")]
        kinds = {b"res": "resources", b"ws": "websockets"}
        if len(parts) < 2 or parts[0] not in kinds:
            return None, None
        segments = [p.decode("utf-8", "replace") for p in parts[1:]]
        record = self.hanji.registry.snapshot().get(segments[0])
        if record is None or not record.is_active:
            return None, None
        found = match(getattr(record, kinds[parts[0]]), segments[1:])
        return (found[0] if found else None), record.id

    def _django(self, request: Any) -> Any:
        if request.prepath:
            request.postpath.insert(0, request.prepath.pop())
        return self.hanji.django_resource

    def _consume(self, request: Any, n: int) -> None:
        postpath = request.postpath
        request.prepath.extend(postpath[:n])
        del postpath[:n]

    def _unknown(self, request: Any, applet_id: str) -> Any:
        if self.hanji.django_matches(request.path):
            return None
        known = [r.id for r in self.hanji.registry.active()]
        return answers.not_found(str(AppletNotFound(applet_id, known)))

    def _static(self, request: Any) -> Any:
        segments = _segments(request)
        if not segments or not segments[0]:
            return None
        if segments[0] == "hanji":
            self._consume(request, 1)
            return self.hanji_static
        record = self.hanji.registry.snapshot().get(segments[0])
        if record is None or not record.is_active:
            app_folder = self.app_static.get(segments[0])
            if app_folder is not None:  # another Django app's (admin/css/base.css)
                self._consume(request, 1)
                return app_folder
            return self._unknown(request, segments[0])
        folder = record.static_folder
        if folder is None:
            return answers.not_found(f"applet '{record.id}' has no static/ folder.")
        self._consume(request, 1)
        return folder

    def _mounted(self, request: Any, kind: str, prefix: str) -> Any:
        segments = _segments(request)
        if not segments or not segments[0]:
            return None
        record = self.hanji.registry.snapshot().get(segments[0])
        if record is None or not record.is_active:
            return self._unknown(request, segments[0])
        table = getattr(record, kind)
        found = match(table, segments[1:])
        if found is None:
            if self.hanji.django_matches(request.path):
                return None
            paths = ", ".join(sorted(f"{prefix}/{record.id}/{p}" for p in table)) or "none"
            return answers.not_found(
                f"applet '{record.id}' has no resource at {html.escape(request.path.decode('utf-8', 'replace'))}. "
                f"Its {kind}: {paths}."
            )
        res, n = found
        self._consume(request, 1 + n)
        return res
