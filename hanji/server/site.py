"""The one HTTP site and its routing, on the reactor thread.

Routing order (first match wins):

    /static/hanji/…          Hanji's JS and CSS
    /static/<applet_id>/…    the applet's static/ folder
    /res/<applet_id>/<path>  TwAppletResource (Twisted, reactor thread)
    /ws/<applet_id>/<path>   websocket endpoints (reactor thread)
    everything else          Django, through WSGIResource on the Django pool

Under ``/static``, ``/res`` and ``/ws`` a URL that Twisted does not serve goes to
Django if Django's URLconf matches it; otherwise it is a 404 that names the applets.

Before routing, every request but those for Hanji's own assets must pass the access
token check (:mod:`hanji.server.access`), and unsafe methods on ``/res`` the CSRF
check (:mod:`hanji.server.csrf`); a refusal is a 403 with the reason.
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from twisted.web import http, resource, server

from hanji import _threads
from hanji._exceptions import AppletNotFound
from hanji.server import _guard, access, csrf, static
from hanji.server.limits import HanjiChannel, Limits, body_limit_of

if TYPE_CHECKING:
    from hanji.server.runtime import HanjiServer

log = logging.getLogger("hanji.server")


class HanjiRequest(server.Request):
    """A request that the site counts while it is in flight (for the drain).

    In debug mode ``write``, ``finish`` and the transport's ``write`` raise
    HanjiThreadError off the reactor thread (:mod:`hanji.server._guard`).
    """

    _in_flight: set[Any] | None = None

    def process(self) -> None:
        """Render the request; reactor thread. The site's ``serving`` names it
        meanwhile, for the stall watchdog's reports."""
        site = self.channel.site  # type: ignore[attr-defined]
        self._in_flight = site.in_flight
        self._in_flight.add(self)
        if _threads._debug:
            _guard.guard_request(self)
        site.serving = self
        try:
            super().process()
        finally:
            site.serving = None

    def write(self, data: bytes) -> None:
        """Write to the response; reactor thread (checked in debug mode).

        Before the headers go out, the cookies of ``addCookie`` (the access cookie)
        join those already in the headers (Django's ``csrftoken``, ``sessionid``):
        Twisted would replace the latter with the former.
        """
        if not self.startedWriting and self.cookies:
            already = self.responseHeaders.getRawHeaders(b"set-cookie") or []
            self.cookies[:0] = [c for c in already if c not in self.cookies]
        super().write(data)

    def finish(self) -> None:
        """Finish the response; reactor thread (checked in debug mode)."""
        if _threads._debug:
            _threads.check_reactor_thread("request.finish", _guard.FINISH_ADVICE)
        if self._in_flight is not None:
            self._in_flight.discard(self)
        super().finish()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Parse the received request and process it; reactor thread.

        If Twisted's parsing raises before processing starts (its Content-Type
        parser fails on a value holding a vertical tab), answer 400 and close, as
        Twisted does for a broken multipart body, instead of dropping the
        connection with an "Unhandled Error".
        """
        try:
            super().requestReceived(command, path, version)
        except Exception as exc:
            if self._in_flight is not None:
                raise  # processing had started: not a parse error
            log.info("400 for an unparsable request %r: %s", path[:200], exc)
            self.channel._respondToBadRequestAndDisconnect()

    def connectionLost(self, reason: Any) -> None:
        if self._in_flight is not None:
            self._in_flight.discard(self)
        super().connectionLost(reason)

    def handleContentChunk(self, data: bytes) -> None:
        """Keep a piece of the body unless it takes the body past its limit (then
        the channel has answered 413); reactor thread."""
        count = getattr(self.channel, "handle_body_chunk", None)
        if count is None or count(len(data)):
            super().handleContentChunk(data)

    def render(self, resrc: Any) -> None:
        """Render ``resrc``, answering 405 to any method it lacks; reactor thread.

        Twisted answers 405 only for GET, HEAD and POST and a 501 server error to
        PUT, DELETE, OPTIONS or an unknown method; those are client errors too.
        """
        if self.method not in server.supportedMethods:
            resrc = _MethodGuard(resrc)
        super().render(resrc)


class _MethodGuard:
    """Wrap a resource so an unsupported method other than GET, HEAD and POST (which
    Twisted answers itself) gets 405 with ``Allow`` instead of 501; reactor thread."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def render(self, request: Any) -> Any:
        try:
            return self.wrapped.render(request)
        except resource.UnsupportedMethod as exc:
            allowed = b", ".join(exc.allowedMethods)
            request.setResponseCode(405)
            request.setHeader(b"allow", allowed)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            method = request.method.decode("latin-1")
            path = request.path.decode("utf-8", "replace")
            return (f"405 Method Not Allowed: {path} does not support {method!r}; "
                    f"allowed: {allowed.decode('latin-1') or 'none'}.\n").encode("utf-8")


class HanjiSite(server.Site):
    """The site; ``in_flight`` holds the requests not finished yet (reactor thread).

    The access log is opt-in (``hanji serve --access-log PATH``), written by Twisted
    straight to its file: formatting a line per request through Python logging
    halved the requests/s of a trivial resource (bench/FINDINGS.md, A).
    """

    requestFactory = HanjiRequest

    def __init__(self, root: resource.IResource, access_log: str | None = None,
                 limits: Limits | None = None, **kwargs: Any) -> None:
        self.limits = limits or Limits()
        kwargs.setdefault("timeout", self.limits.idle_timeout or None)
        kwargs.setdefault("logFormatter", _access_log_line)
        super().__init__(root, logPath=access_log, **kwargs)
        self.in_flight: set[HanjiRequest] = set()
        self.serving: HanjiRequest | None = None  # the request being rendered right now

    def protocol(self) -> HanjiChannel:  # type: ignore[override]
        """Build the channel of one connection, with this site's limits; reactor thread."""
        channel = HanjiChannel()
        channel.limits = self.limits
        return channel

    def body_limit(self, uri: bytes) -> tuple[int, Any, str | None]:
        """Return the body limit of the resource ``uri`` goes to, that resource if it
        sets the limit (``max_body``; else None: the server's limit) and its applet
        id; reactor thread, no side effects."""
        peek = getattr(self.resource, "peek", None)
        res, applet_id = peek(uri) if peek is not None else (None, None)
        own = body_limit_of(res, 0)
        if own:
            return own, res, applet_id
        return self.limits.max_body, None, None

    def early_refusal(self, request: Any, uri: bytes) -> str | None:
        """Return why a request whose head just arrived, with a body to come, is
        refused at once (a foreign Host, no access token), or None; reactor thread, no
        side effects."""
        hanji = getattr(self.resource, "hanji", None)
        refused = access.host_refusal(request, getattr(hanji, "allowed_hosts", None))
        if refused is not None:
            return refused
        token = getattr(hanji, "token", None)
        if token is None:
            return None
        segments = [unquote_to_bytes(p) for p in uri.split(b"?", 1)[0][1:].split(b"/")]
        if access.is_open_path(segments) or access.presented(request, uri, token, hanji.port) is not None:
            return None
        return access.refusal_reason(uri.split(b"?", 1)[0].decode("utf-8", "replace"))

    def log(self, request: Any) -> None:
        if self.logPath is not None:
            super().log(request)


_TOKEN_IN_QUERY = re.compile(rb"(?<=[?&])token=[^&#]*")


def _access_log_line(timestamp: str, request: Any) -> str:
    """Format an access log line, with a ``?token=`` value in the URL blanked out
    (the access token must not end up in a log file); reactor thread."""
    uri = request.uri
    if b"token=" not in uri:
        return http.combinedLogFormatter(timestamp, request)
    request.uri = _TOKEN_IN_QUERY.sub(b"token=(hidden)", uri)
    try:
        return http.combinedLogFormatter(timestamp, request)
    finally:
        request.uri = uri


class NotFoundPage(resource.Resource):
    """A plain-text 404 with a reason."""

    isLeaf = True

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def render(self, request: Any) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return ("404 Not Found: " + self.message + "\n").encode("utf-8")


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
            if child is not None and not isinstance(child, NotFoundPage):
                # An upgraded websocket is no longer an HTTP request in flight.
                request.site.in_flight.discard(request)
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
            return access.Forbidden(reason)
        if self.hanji.token is None:
            request.hanji_auth = access.OPEN
        elif not access.is_open_path([name, *request.postpath]):
            if access.authenticate(request, self.hanji.token, self.hanji.port) is None:
                return access.refusal(request)
        if name == b"res":
            reason = csrf.refusal(request)
            if reason is not None:
                path = request.path.decode("utf-8", "replace")
                return access.Forbidden(f"{request.method.decode('ascii', 'replace')} {path}: {reason}")
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
        if record is None or record.state != "active":
            return None, None
        found = match(getattr(record, kinds[parts[0]]), segments[1:])
        return (found[0] if found else None), record.id

    def _django(self, request: Any) -> Any:
        if request.prepath:
            request.postpath.insert(0, request.prepath.pop())
        return self.hanji.django_resource

    def _consume(self, request: Any, n: int) -> None:
        for _ in range(n):
            request.prepath.append(request.postpath.pop(0))

    def _unknown(self, request: Any, applet_id: str) -> Any:
        if self.hanji.django_matches(request.path):
            return None
        known = [r.id for r in self.hanji.registry.active()]
        return NotFoundPage(str(AppletNotFound(applet_id, known)))

    def _static(self, request: Any) -> Any:
        segments = _segments(request)
        if not segments or not segments[0]:
            return None
        if segments[0] == "hanji":
            self._consume(request, 1)
            return self.hanji_static
        record = self.hanji.registry.snapshot().get(segments[0])
        if record is None or record.state != "active":
            return self._unknown(request, segments[0])
        folder = record.static_folder
        if folder is None:
            return NotFoundPage(f"applet '{record.id}' has no static/ folder.")
        self._consume(request, 1)
        return folder

    def _mounted(self, request: Any, kind: str, prefix: str) -> Any:
        segments = _segments(request)
        if not segments or not segments[0]:
            return None
        record = self.hanji.registry.snapshot().get(segments[0])
        if record is None or record.state != "active":
            return self._unknown(request, segments[0])
        table = getattr(record, kind)
        found = match(table, segments[1:])
        if found is None:
            if self.hanji.django_matches(request.path):
                return None
            paths = ", ".join(sorted(f"{prefix}/{record.id}/{p}" for p in table)) or "none"
            return NotFoundPage(
                f"applet '{record.id}' has no resource at {html.escape(request.path.decode('utf-8', 'replace'))}. "
                f"Its {kind}: {paths}."
            )
        res, n = found
        self._consume(request, 1 + n)
        return res


def build_site(hanji_server: HanjiServer, access_log: str | None = None,
               limits: Limits | None = None) -> HanjiSite:
    """Return the site serving ``hanji_server``'s routes, with an access log file if
    ``access_log`` names one, and ``limits`` (the defaults if None); reactor thread."""
    site = HanjiSite(HanjiRoot(hanji_server), access_log, limits)  # type: ignore[arg-type]
    site.displayTracebacks = False
    return site
