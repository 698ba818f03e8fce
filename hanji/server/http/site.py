"""The one HTTP site of a Hanji server: requests, connections, the access log;
reactor thread. Routing is :mod:`hanji.server.http.routing`; the limits each
connection enforces are :mod:`hanji.server.http.limits`.
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import TYPE_CHECKING, Any, Callable, cast
from urllib.parse import unquote_to_bytes

from twisted.web import http, resource, server

from hanji import _compat, _config, _threads
from hanji.server import _guard
from hanji.server.http import answers
from hanji.server.security import access
from hanji._logfile import short
from hanji.server.http._fast_channel import FastChannel
from hanji.server.http._fast_request import LeanRequest
from hanji.server.http.limits import HanjiChannel, Limits, body_limit_of, refusals

if TYPE_CHECKING:
    from hanji.server.runtime import HanjiServer

log = logging.getLogger("hanji.server")


class HanjiRequest(server.Request):
    """A request that the site counts while it is in flight (for the drain).

    In debug mode ``write``, ``finish`` and the transport's ``write`` raise
    HanjiThreadError off the reactor thread (:mod:`hanji.server._guard`).
    """

    _site: HanjiSite | None = None  # set while the request is in flight

    def process(self) -> None:
        """Render the request; reactor thread. The site's ``serving`` names it
        meanwhile, for the stall watchdog's reports."""
        site = self.channel.site  # type: ignore[attr-defined]
        self._site = site
        site.in_flight.add(self)
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
        self.done_in_flight()
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
            if self._site is not None:
                raise  # processing had started: not a parse error
            refusals.refused(400, "400 for an unparsable request %s: %s", short(path), short(exc, 200))
            _compat.respond_bad_request(self.channel)

    def connectionLost(self, reason: Any) -> None:
        self.done_in_flight()
        super().connectionLost(reason)

    def done_in_flight(self) -> None:
        """Stop counting this request as in flight (finished, lost or upgraded to
        another protocol) and tell the site; reactor thread."""
        site, self._site = self._site, None
        if site is not None:
            site.in_flight.discard(self)
            if site.request_watchers:  # a drain waits
                for watcher in list(site.request_watchers):
                    watcher()

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


class FastRequest(HanjiRequest, LeanRequest):
    """The request of the httptools channel: HanjiRequest with twisted.web's hot
    paths done with less work (:mod:`hanji.server.http._fast_request`); reactor thread."""

    # Identity, as Request.__hash__'s id(self), without a Python call on each
    # in_flight.add and discard.
    __hash__ = object.__hash__


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
            method = request.method.decode("latin-1")
            path = request.path.decode("utf-8", "replace")
            return answers.answer(request, 405, f"{path} does not support {method!r}; allowed: "
                                  f"{allowed.decode('latin-1') or 'none'}.", {b"allow": allowed})


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
        # The HanjiServer this site serves (``request.site.server`` in a resource).
        self.server: HanjiServer | None = None
        # Connections upgraded to another protocol (websockets), wherever mounted.
        self.upgraded: weakref.WeakSet[HanjiChannel] = weakref.WeakSet()
        # Called when a request stops being in flight (drains add themselves).
        self.request_watchers: list[Callable[[], None]] = []
        # The HTTP/1.1 parser: "httptools" (FastChannel) or "twisted" (HanjiChannel);
        # HANJI_HTTP_PARSER, which ``hanji serve --http`` sets.
        self.http_parser = _config.http_parser()

    def protocol(self) -> HanjiChannel:  # type: ignore[override]
        """Build the channel of one connection, with this site's limits and parser
        (``http_parser``); reactor thread."""
        if self.http_parser == "httptools":
            fast = FastChannel()
            fast.lean_request = FastRequest
            channel: HanjiChannel = fast
        else:
            channel = HanjiChannel()
        channel.limits = self.limits
        channel.on_upgrade = self._upgraded
        return channel

    def _upgraded(self, channel: HanjiChannel) -> None:
        """Count ``channel``, just upgraded (a websocket handshake, by a Hanji
        endpoint or a plain twisted.web one), as a connection and its request as no
        longer in flight; reactor thread."""
        self.upgraded.add(channel)
        for request in list(channel.requests):
            if isinstance(request, HanjiRequest):
                request.done_in_flight()

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
        hanji = self.server
        if hanji is None:
            return None
        refused = access.host_refusal(request, hanji.allowed_hosts)
        if refused is not None:
            return refused
        token = hanji.token
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


def build_site(hanji_server: HanjiServer, access_log: str | None = None,
               limits: Limits | None = None) -> HanjiSite:
    """Return the site serving ``hanji_server``'s routes, with an access log file if
    ``access_log`` names one, and ``limits`` (the defaults if None); reactor thread."""
    from hanji.server.http.routing import HanjiRoot

    site = HanjiSite(cast(resource.IResource, HanjiRoot(hanji_server)), access_log, limits)
    site.server = hanji_server
    site.displayTracebacks = False
    log.info("HTTP/1.1 parser: %s (hanji serve --http, HANJI_HTTP_PARSER).", site.http_parser)
    return site
