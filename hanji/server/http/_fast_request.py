"""twisted.web's request with its per-request hot paths done with less work; reactor
thread only.

:class:`LeanRequest` is a ``twisted.web.server.Request`` whose ``process`` and first
``write`` do what Twisted 26.10's do, with fewer steps: the ``Date`` header is
formatted once a second instead of once a request, the default headers go straight
into the header table, and the response head is built in one pass. Every other path
(a HEAD faked with GET, an encoder, a second write, chunking, cookies, ETag,
Last-Modified) is Twisted's own. The site combines it with ``HanjiRequest`` for the
httptools channel (:mod:`hanji.server.http._fast_channel`);
``tests/unit/test_fast_channel.py`` compares its answers with Twisted's, byte for
byte, so an upgrade of Twisted that changes them fails there.
"""

from __future__ import annotations

import time
from io import BytesIO
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.python import failure
from twisted.web import http, resource, server
from twisted.web.http_headers import Headers

from hanji import _compat

_SERVER = server.version
_NO_BODY = http.NO_BODY_CODES
_NO_TYPE = (http.NOT_MODIFIED, http.NO_CONTENT)

_date_second = -1
_date_value = b""


def date_header() -> bytes:
    """Return the ``Date`` header of this second (formatted once a second)."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = http.datetimeToString(now)
        _date_second = now
    return _date_value


class LeanRequest(server.Request):
    """A ``server.Request`` with a leaner ``process`` and first ``write``; reactor
    thread only."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        """Set what ``server.Request.__init__`` sets (Twisted 26.10; a unit test
        compares the attributes), without its calls and checks."""
        if args or kwargs:
            super().__init__(channel, *args, **kwargs)
            return
        self.notifications = []
        self.channel = channel
        self.client = channel.getPeer()
        self.host = channel.getHost()
        self.requestHeaders = Headers()
        self.received_cookies = {}
        self.responseHeaders = Headers()
        self.cookies = []
        self.transport = channel.transport
        self.queued = False
        self._parsePOSTFormSubmission = channel.site._parsePOSTFormSubmission
        self._adapterCache = {}  # components.Componentized.__init__

    def gotLength(self, length: int | None) -> None:
        """Make the body's file: in memory up to 100 kB, as twisted.web does."""
        channel: Any = self.channel
        if length is not None and length < 100_000 and getattr(channel.site, "getContentFile", None) is None:
            self.content = BytesIO()  # type: ignore[assignment]
        else:
            super().gotLength(length)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Take the request line and process the request, as
        ``http.Request.requestReceived`` does (which also parses POSTed forms: a POST
        with a body goes there)."""
        if command == b"POST":
            super().requestReceived(command, path, version)
            return
        content: Any = self.content
        content.seek(0, 0)
        self.method, self.uri, self.clientproto = command, path, version
        bare, mark, query = path.partition(b"?")
        self.path = bare
        self.args = http.parse_qs(query, 1) if mark else {}
        self.process()

    def process(self) -> None:
        """Find the resource and render it, as ``server.Request.process`` does."""
        channel: Any = self.channel
        self.site = site = channel.site
        raw = _compat.raw_headers(self.responseHeaders)
        raw[b"Server"] = [_SERVER]
        raw[b"Date"] = [date_header()]
        self.prepath = []
        path = self.path
        # Most paths hold no escape: split them without a per-segment check.
        self.postpath = (path[1:].split(b"/") if b"%" not in path
                         else [unquote_to_bytes(p) if b"%" in p else p for p in path[1:].split(b"/")])
        if path == b"*":
            self._handleStar()
            return
        try:
            resrc = site.getResourceFor(self)
            if resource._IEncodingResource.providedBy(resrc):
                encoder = resrc.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resrc)
        except BaseException:
            self.processingFailed(failure.Failure())

    def render(self, resrc: Any) -> None:
        """Render ``resrc`` and send what it returns, as ``server.Request.render``
        does; a GET answered with bytes (or ``NOT_DONE_YET``) takes the short way,
        anything else (HEAD, a refused method, a body that is not bytes) Twisted's."""
        if self.method != b"GET":
            server.Request.render(self, resrc)
            return
        try:
            body = resrc.render(self)
        except resource.UnsupportedMethod as exc:
            server.Request.render(self, _Answered(resrc, exc=exc))
            return
        if body is server.NOT_DONE_YET:
            return
        if not isinstance(body, bytes):
            server.Request.render(self, _Answered(resrc, body=body))
            return
        _compat.raw_headers(self.responseHeaders)[b"Content-Length"] = [b"%d" % (len(body),)]
        self.write(body)
        self.finish()

    def write(self, data: bytes) -> None:
        """Write ``data``; the first write sends the head, as Twisted's does."""
        if (self.startedWriting or self._inFakeHead or self._encoder is not None or self.finished
                or _compat.request_disconnected(self) or self.lastModified is not None or self.etag is not None
                or self.method == b"HEAD" or self.code in _NO_BODY):
            server.Request.write(self, data)
            return
        raw = _compat.raw_headers(self.responseHeaders)
        lengths = raw.get(b"Content-Length")
        if (not raw.get(b"Content-Type") and self.defaultContentType is not None
                and self.code not in _NO_TYPE and not (lengths and lengths[0] == b"0")):
            raw[b"Content-Type"] = [self.defaultContentType]
        self.startedWriting = 1
        if self.clientproto == b"HTTP/1.1" and not lengths:
            raw[b"Transfer-Encoding"] = [b"chunked"]
            self.chunked = 1
        if self.cookies:
            self.responseHeaders.setRawHeaders(b"Set-Cookie", self.cookies)
        channel: Any = self.channel
        channel.writeHeaders(self.clientproto, b"%d" % (self.code,), self.code_message, self.responseHeaders)
        self.sentLength = len(data)
        if data:
            if self.chunked:
                channel.writeSequence(http.toChunk(data))
            else:
                channel.write(data)


class _Answered:
    """What a resource already did when :meth:`LeanRequest.render` hands the rest to
    Twisted's: raise ``exc`` again, or return ``body``; shown as the resource in
    Twisted's error pages."""

    def __init__(self, resrc: Any, *, exc: BaseException | None = None, body: Any = None) -> None:
        self.resrc, self.exc, self.body = resrc, exc, body

    def render(self, request: Any) -> Any:
        if self.exc is not None:
            raise self.exc
        return self.body

    def __repr__(self) -> str:
        return repr(self.resrc)
