"""HTTP limits: body size, request head size, slow and idle connections; reactor thread.

twisted.web's ``HTTPChannel`` reads a whole request body before the site routes the
request, keeps an idle keep-alive connection for 12 hours and drops an oversized
header line without a word. :class:`HanjiChannel` decides earlier and says why:

    413  a body larger than the limit of the resource it is for (``max_body``), known
         from Content-Length when the headers are complete, or counted while a
         chunked body arrives; refused before the body is read
    414  a request line longer than ``max_request_line``
    431  more than ``max_headers`` header fields, or a request head (request line
         and headers) larger than ``max_head_size``
    408  a request head not complete within ``header_timeout`` of its first byte,
         or a body arriving slower than ``body_min_rate`` bytes/s over a
         ``body_timeout`` window (slow-loris clients)
    400  a malformed request (Twisted's own check, now with a reason)

Each refusal is a plain-text answer with ``Connection: close``, then the connection
is closed. An idle keep-alive connection is closed after ``idle_timeout`` (Twisted's
own timeout, which pauses while a request is being answered, so a slow Django view
or a resource answering later is never cut). An upgraded websocket leaves this
channel's timers behind: it has its own pings (``hanji.server.websocket.link``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from hanji import _compat
from hanji._logfile import RefusalLog, short
from hanji.server.http.answers import raw_answer
from hanji.server.http.backpressure import OutputBackpressure
from hanji.server.http.chunks import ChunkSizes

log = logging.getLogger("hanji.server.http.limits")
# Refused requests: a few lines per burst, the rest counted (a client chooses their rate).
refusals = RefusalLog(log)

KiB = 1 << 10
MiB = 1 << 20

# Seconds during which what a refused client still sends is read and thrown away,
# so that it reads the answer instead of a connection reset.
LINGER = 2.0


@dataclasses.dataclass(frozen=True)
class Limits:
    """The HTTP limits of a Hanji site; ``None`` (or 0) turns a timeout off.

    Attributes:
        max_body: largest request body in bytes, unless the resource it is for
            sets its own ``max_body`` (``hanji serve --max-body``).
        max_headers: most header fields in one request.
        max_head_size: most bytes in the request line and headers together.
        max_request_line: most bytes in the request line (method, URI, version).
        idle_timeout: seconds a keep-alive connection may wait for its next
            request (``--idle-timeout``).
        header_timeout: seconds from the first byte of a request head to its end
            (``--header-timeout``).
        body_timeout: length in seconds of the windows over which a body's rate
            is measured (``--body-timeout``).
        body_min_rate: bytes per second a body must bring over each window
            (``--body-min-rate``); 0 turns the check off.
        max_output: unsent bytes of answers on one connection above which its
            further pipelined requests wait (``--max-output``; see
            :mod:`hanji.server.http.backpressure`).
    """

    max_body: int = 10 * MiB
    max_headers: int = 100
    max_head_size: int = 64 * KiB
    max_request_line: int = 8 * KiB
    idle_timeout: float | None = 60.0
    header_timeout: float | None = 10.0
    body_timeout: float | None = 10.0
    body_min_rate: int = 1024
    max_output: int = 256 * KiB

    def __post_init__(self) -> None:
        for name in ("max_body", "max_headers", "max_head_size", "max_request_line", "max_output"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, not {getattr(self, name)!r}.")
        if self.body_min_rate < 0:
            raise ValueError(f"Limits.body_min_rate must be 0 or more bytes/s, not {self.body_min_rate!r}.")


def body_limit_of(resource: Any, default: int) -> int:
    """Return the ``max_body`` a resource sets (a positive int), else ``default``."""
    value = getattr(resource, "max_body", None)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


class HanjiChannel(OutputBackpressure, http.HTTPChannel):
    """An HTTP/1.1 channel that enforces :class:`Limits`; reactor thread only.

    The site sets ``limits`` when it builds the channel, and may give a
    ``body_limit(uri)`` method returning ``(limit, resource, applet_id)``: the body
    limit of the resource the request goes to (None for the server's own).

    Twisted's own checks count the headers and the head's size; this channel sets
    their limits and words their answers. Pipelined requests wait while the
    connection's unsent output is above ``max_output`` (:class:`OutputBackpressure`). Its timers start only when a read ends
    in the middle of a head or a body, so a request that arrives in one read (the
    usual case) costs no timer.
    """

    limits: Limits = Limits()
    _refused = False
    _head_started: float | None = None
    _head_timer: Any = None
    _body_timer: Any = None
    _body_bytes = 0
    _window_start = 0
    _max_body: int | None = None
    _body_owner: tuple[Any, str | None] = (None, None)
    _linger_call: Any = None
    _chunks: ChunkSizes | None = None  # the framing of a chunked body being read
    _announced = 0  # bytes its chunk-size lines announced so far
    # Called with the channel when it is upgraded to a websocket (set by the site).
    on_upgrade: Any = None
    # After an upgrade: the websocket link told when the output passes its bound.
    output_listener: Any = None

    def connectionMade(self) -> None:
        self.maxHeaders = self.limits.max_headers
        self.totalHeadersSize = self.limits.max_head_size
        self.MAX_LENGTH = self.limits.max_head_size
        self.max_output = self.limits.max_output
        super().connectionMade()
        self.set_output_bound(self.transport)

    # -- reading ---------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: throw the rest away
        if self._head_started is None and self.line_mode and not _compat.channel_handling_request(self):
            self._head_started = time.monotonic()
        super().dataReceived(data)
        if self.paused:
            # Answers wait to be read: no new request meanwhile, and a head that
            # waits is not a slow head (the idle timeout still applies).
            self.hold_reading()
            self._head_started = None
            self._cancel(head=True)
            return
        if self._refused or _compat.channel_handling_request(self):
            return
        if self.line_mode:
            if self.requests or _compat.channel_unparsed(self).strip(b"\r\n"):
                if self._head_timer is None:  # a head is still arriving
                    self._start_head_timer()
            else:
                # Between requests (at most a stray CRLF): the idle timeout's turn.
                self._head_started = None
                if self._head_timer is not None:
                    self._cancel(head=True)
        elif self._body_timer is None:  # a body is still arriving
            self._start_body_timer()

    def pauseProducing(self) -> None:
        """The transport's unsent output passed ``max_output``: hold new requests
        (after an upgrade, tell the websocket link)."""
        if self.output_listener is not None:
            self.output_listener.output_full()
            return
        self.output_paused()
        super().pauseProducing()

    def resumeProducing(self) -> None:
        """The transport's output drained: take the held requests (after an
        upgrade, tell the websocket link)."""
        if self.output_listener is not None:
            self.output_listener.output_drained()
            return
        super().resumeProducing()
        self._head_started = None
        self.output_drained()

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        chunks = self._chunks
        if chunks is not None and not _compat.channel_handling_request(self):
            for size in chunks.feed(data):
                self._announced += size
                if self._max_body is not None and self._announced > self._max_body:
                    self._refuse_body(self._announced, "announces")
                    return
            if chunks.done:
                self._chunks = None
        super().rawDataReceived(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse a line too long to buffer (Twisted drops the connection silently)."""
        if self._refused:
            return
        if not self.requests:
            self._refuse(414, f"the request line is more than {self.limits.max_request_line} bytes "
                              "long. Send a shorter URL (put large data in a POST body).")
        else:
            self._refuse(431, f"a header line is more than {self.MAX_LENGTH} bytes long. Send "
                              "smaller headers (cookies included).")

    def allHeadersReceived(self) -> None:
        """Check the request line's length and the body's announced size against its
        resource's limit, then go on as Twisted does (which may answer ``100
        Continue``)."""
        self._head_started = None
        if self._head_timer is not None:
            self._cancel(head=True)
        command, uri, version = _compat.channel_request_line(self)
        line_length = len(command) + len(uri) + len(version) + 2
        if line_length > self.limits.max_request_line:
            self.length = None  # Twisted's way to stop reading this request
            self._refuse(414, f"the request line is {line_length} bytes long, more than the "
                              f"{self.limits.max_request_line} allowed. Send a shorter URL (put "
                              "large data in a POST body).")
            return
        host_problem = self._host_problem(version)
        if host_problem is not None:
            self.length = None
            self._refuse(400, host_problem)
            return
        self._body_bytes = 0
        self._max_body = None
        if self.length != 0:
            refused = self._early_refusal()
            if refused is not None:
                self.length = None  # Twisted's way to stop reading this request
                self._refuse(403, refused)
                return
            self._max_body, resource, applet_id = self._body_limit()
            self._body_owner = (resource, applet_id)
            self._chunks, self._announced = None, 0
            encoding = self.requests[-1].requestHeaders.getRawHeaders(b"transfer-encoding") if self.requests else None
            if encoding and b"chunked" in encoding[-1].lower():
                self._chunks = ChunkSizes()  # see each chunk's size before its data
            if self.length is not None and self.length > self._max_body:
                self._refuse_body(self.length, "is")
                return
        super().allHeadersReceived()

    def _host_problem(self, version: bytes) -> str | None:
        """Return why the request's Host header is unusable (RFC 9112 3.2: an
        HTTP/1.1 request has exactly one), or None."""
        request = self.requests[-1] if self.requests else None
        if request is None:
            return None
        hosts = request.requestHeaders.getRawHeaders(b"host") or []
        if len(hosts) > 1:
            return f"the request has {len(hosts)} Host headers; send exactly one."
        if not hosts and version == b"HTTP/1.1":
            return "an HTTP/1.1 request needs a Host header; send the server's host name and port."
        return None

    def handle_body_chunk(self, size: int) -> bool:
        """Count ``size`` more body bytes; refuse and return False past the limit.

        Called by the request for each piece of its (decoded) body.
        """
        if self._refused:
            return False
        self._body_bytes += size
        if self._max_body is not None and self._body_bytes > self._max_body:
            self._refuse_body(self._body_bytes, "reached")
            return False
        return True

    def allContentReceived(self) -> None:
        if self._refused:
            return  # a chunked body's end after the refusal in the same read
        if self._body_timer is not None:
            self._cancel(body=True)
        super().allContentReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Free what the client never read now (see _compat.discard_unsent).
        if self.transport is not None:
            _compat.discard_unsent(self.transport)
        self._cancel(head=True, body=True)
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        super().connectionLost(reason)

    def upgrade_to_websocket(self, protocol: Any) -> None:
        """Hand the connection to a websocket wire protocol (what
        twisted.web.websocket does once the handshake is accepted), after telling
        the site: the request is no longer in flight; reactor thread."""
        self._cancel(head=True, body=True)
        if self.on_upgrade is not None:
            self.on_upgrade(self)
        _compat.upgrade_channel(self, protocol)

    def refuse_bad_request(self) -> None:
        """Answer Twisted's own 400s with a reason; its header limits with 431."""
        header_count, header_size = _compat.channel_header_counts(self)
        if header_count > self.maxHeaders:
            self._refuse(431, f"the request has more than {self.maxHeaders} header fields. "
                              "Send fewer headers.")
        elif header_size > self.totalHeadersSize:
            self._refuse(431, f"the request line and headers are more than {self.totalHeadersSize} "
                              "bytes. Send fewer or smaller headers (cookies included).")
        else:
            self._refuse(400, "the request is malformed (request line, a header, the body's "
                              "framing or a form body). Check what the client sends.")

    # -- the body limit ------------------------------------------------------------

    def _body_limit(self) -> tuple[int, Any, str | None]:
        """Return the body limit of the request whose head just ended, the resource
        that sets it (None: the server's limit) and that resource's applet id."""
        peek = getattr(getattr(self, "site", None), "body_limit", None)
        if peek is not None:
            try:
                return peek(_compat.channel_request_line(self)[1])  # type: ignore[no-any-return]
            except Exception:
                log.exception("Cannot look up the body limit of %r; using the server's.",
                              _compat.channel_request_line(self)[1])
        return self.limits.max_body, None, None

    def _early_refusal(self) -> str | None:
        """Return why the request whose head just ended is refused before its body
        (no access token: see ``HanjiSite.early_refusal``), or None."""
        check = getattr(getattr(self, "site", None), "early_refusal", None)
        if check is None:
            return None
        request = self.requests[-1]
        request.parseCookies()  # Twisted does it later in allHeadersReceived; idempotent
        return check(request, _compat.channel_request_line(self)[1])  # type: ignore[no-any-return]

    def _refuse_body(self, size: int, verb: str) -> None:
        command, uri, _ = _compat.channel_request_line(self)
        method = command.decode("ascii", "replace")
        path = uri.decode("utf-8", "replace").split("?")[0]
        resource, applet_id = self._body_owner
        if resource is None:
            what = (f"the server's limit, {self._max_body} bytes. Send less, or raise the limit "
                    "(hanji serve --max-body BYTES)")
        else:
            name = type(resource).__name__
            what = (f"the limit of {name} (applet '{applet_id}'), {self._max_body} bytes. Send "
                    f"less, or raise {name}.max_body")
        self.length = None  # Twisted's way to stop reading this request
        self._refuse(413, f"the body of {method} {short(path)} {verb} {size} bytes, over {what}.")

    # -- timers --------------------------------------------------------------------------

    def _start_head_timer(self) -> None:
        timeout = self.limits.header_timeout
        if timeout:
            started = self._head_started if self._head_started is not None else time.monotonic()
            self._head_started = started
            left = max(0.0, started + timeout - time.monotonic())
            self._head_timer = self.callLater(left, lambda: self._head_too_slow(timeout))

    def _head_too_slow(self, timeout: float) -> None:
        self._head_timer = None
        self._refuse(408, f"the request line and headers did not arrive in full within {timeout:g} s "
                          "of their first byte. Send the request head at once.")

    def _start_body_timer(self) -> None:
        window, rate = self.limits.body_timeout, self.limits.body_min_rate
        if window and rate:
            self._window_start = self._body_bytes
            self._body_timer = self.callLater(window, lambda: self._check_body_rate(window, rate))

    def _check_body_rate(self, window: float, rate: int) -> None:
        self._body_timer = None
        got = self._body_bytes - self._window_start
        if got < rate * window:
            self._refuse(408, f"the request body arrived too slowly: {got} bytes in {window:g} s, "
                              f"less than {rate} bytes/s. Send the body at once.")
            return
        self._start_body_timer()

    def _cancel(self, head: bool = False, body: bool = False) -> None:
        if head and self._head_timer is not None:
            if self._head_timer.active():
                self._head_timer.cancel()
            self._head_timer = None
        if body and self._body_timer is not None:
            if self._body_timer.active():
                self._body_timer.cancel()
            self._body_timer = None

    # -- refusing ---------------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with a plain-text reason and close the connection, once.

        The rest of what the client sends is read and thrown away for a moment
        (``LINGER`` s) before the close: closing a socket with unread data resets
        the connection, and a client still sending (its body, its headers) would
        see the reset instead of the answer.
        """
        if self._refused:
            return
        self._refused = True
        self.setRawMode()  # the lines still buffered go to rawDataReceived: dropped
        self._cancel(head=True, body=True)
        transport: Any = self.transport
        refusals.refused(status, "Refused a request from %s with %d: %s",
                         getattr(transport.getPeer(), "host", "?"), status, short(reason, 300))
        transport.write(raw_answer(status, reason))
        half_close = getattr(transport, "loseWriteConnection", None)
        if half_close is not None:
            _compat.channel_stop_producing(self)
            half_close()
            self._linger_call = self.callLater(LINGER, transport.loseConnection)
        else:
            self.loseConnection()


# Twisted answers malformed requests with a bare 400; HanjiChannel words them.
_compat.override_bad_request(HanjiChannel, HanjiChannel.refuse_bad_request)
# twisted.web.websocket upgrades a channel through a private method; see the upgrade.
_compat.override_websocket_upgrade(HanjiChannel, HanjiChannel.upgrade_to_websocket)
