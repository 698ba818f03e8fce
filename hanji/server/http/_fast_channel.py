"""An HTTP/1.1 channel whose parser is httptools (llhttp, C); reactor thread only.

twisted.web's ``HTTPChannel`` parses requests in pure Python, line by line, and that
parsing is most of the per-request cost of a trivial resource. :class:`FastChannel`
feeds what a connection receives to httptools' ``HttpRequestParser`` instead and
builds the same ``twisted.web.server.Request`` objects (the site's ``HanjiRequest``),
so resources, the render contract and websockets see no difference. Everything else
is :class:`~hanji.server.http.limits.HanjiChannel`'s, inherited: the limits, the Host
check, the refusals, the timers, output backpressure, the websocket upgrade.

How the two parsers are kept in step with Twisted's semantics:

- **One request at a time, in order.** Complete requests wait in ``_ready``; the
  next one starts when the previous one finished (``requestDone``). While a request
  is answered nothing more is parsed: what arrives waits in ``_pending`` (up to
  Twisted's 16 kB read-ahead, then the socket is not read), as twisted.web does.
  Data is fed in slices of at most :data:`SLICE` bytes (plus a body's known rest),
  so one read full of pipelined requests builds at most a slice's worth of them.
- **Refusals in order.** A refusal found while earlier requests wait (say a 413 for
  the third of three pipelined requests) is given once they are answered.
- **Strictness.** llhttp refuses what Twisted refuses for request smuggling (a
  Content-Length with a Transfer-Encoding, two Content-Lengths, obs-fold, bad chunk
  framing: 400 and close) and more (control characters in the URL). A method llhttp
  does not know (``FOO``) is not malformed HTTP: twisted.web's own parser, which the
  class inherits, takes the connection from that request on (once the requests
  before it are answered).
- **Upgrades.** llhttp stops after a request with ``Connection: upgrade``; the bytes
  after it go to the websocket if the resource upgraded the channel (twisted.web
  drops them), else they are parsed as the next request. An upgrade request with a
  body is refused (400): llhttp would not read that body.
- **Sending.** A response head is sent with the first bytes of its body, straight
  to the socket when nothing waits to be sent (see ``writeHeaders``).
"""

from __future__ import annotations

import collections
import time
from typing import Any

from httptools import (HttpParserCallbackError, HttpParserError, HttpParserInvalidMethodError,
                       HttpParserUpgrade, HttpRequestParser)
from twisted.internet import tcp
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from hanji import _compat
from hanji.server.http.chunks import ChunkSizes
from hanji.server.http.limits import HanjiChannel, log

# Bytes read ahead while a request is answered before the socket is not read any
# more (twisted.web's HTTPChannel._optimisticEagerReadSize, Twisted 26.10).
READ_AHEAD = 0x4000

# Bytes fed to the parser at once (beyond a body's known rest): bounds the requests
# that one read full of pipelined requests builds before the first is answered.
SLICE = 4096

_IDLE, _HEAD, _BODY = 0, 1, 2  # where the parser is in the current message
_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}  # what twisted.web accepts too

# The request headers the channel itself reads (lowercase), and their lengths.
_SPECIAL = frozenset({b"host", b"content-length", b"transfer-encoding", b"expect", b"connection"})
_SPECIAL_LENGTHS = frozenset(len(name) for name in _SPECIAL)
_header_name = _compat.header_name_encoder()


class _Counter:
    """An httptools protocol that counts complete messages."""

    complete = 0

    def on_message_complete(self) -> None:
        self.complete += 1


def _message_end(data: bytes, count: int) -> int | None:
    """Return where the ``count``-th complete message of ``data`` (which starts a
    message) ends, or None; byte by byte, for the rare request llhttp refuses
    after others in the same read."""
    counter = _Counter()
    parser = HttpRequestParser(counter)
    for i in range(len(data)):
        try:
            parser.feed_data(data[i:i + 1])
        except HttpParserError:
            return None
        if counter.complete >= count:
            return i + 1
    return None


class _Stop(Exception):
    """Raised in a parser callback to stop parsing (a refusal, or the last request
    of a connection that closes after it)."""


class FastChannel(HanjiChannel):
    """A :class:`HanjiChannel` parsing with httptools; reactor thread only.

    The ``on_*`` methods are httptools' callbacks; they run inside ``feed_data``.
    """

    _phase = _IDLE
    _twisted = False  # handed to twisted.web's parser (a method llhttp does not know)
    _upgraded = False
    _later: tuple[int, str] | None = None  # a refusal waiting for earlier answers
    _last = False  # the request that closes the connection was received: parse no more
    _twisted_next = False  # twisted.web's parser takes over once the queue is answered
    _halted = False  # refused, upgraded or handed to twisted.web's parser: no more pumping
    _answering = False  # a request is being answered (the next ones wait)
    _header_count = 0  # header fields in the current head
    _header_size = 0  # bytes of its request line and header fields so far
    _max_headers = 0  # the limits' max_headers and max_head_size, read per header
    _max_head_size = 0
    _pumping = False
    _feeding = False  # inside feed_data: a refusal concerns a request not started yet
    _held = False  # the socket is not read (requests or answers wait)
    _body_left: int | None = None  # bytes of a Content-Length body still to come
    _started_idle = True  # the current feed began between two messages
    _data: Any = b""  # the bytes of the current feed
    _tail = b""  # the last bytes of the previous feed, while a head is arriving
    _begun = 0  # messages begun in the current feed
    _hosts = 0  # Host headers in the current head
    _peer: Any = None
    _host: Any = None
    _socket: Any = None  # a plain TCP connection's socket: answers are sent at once
    _head: bytes | None = None  # a response head held to go out with its first body bytes
    _hold = 0  # >0 while a head may be held (see writeHeaders)

    def __init__(self) -> None:
        super().__init__()
        self._parser: Any = HttpRequestParser(self)
        self._ready: collections.deque[tuple[Any, bytes, bytes, bytes, bool]] = collections.deque()
        self._pending = b""  # received, not parsed yet
        self._at = 0  # where the unparsed part of _pending starts
        self._parsing: Any = None  # the request whose head or body is arriving
        self._url = b""
        self._head_bytes = 0
        self._body_in_feed = 0  # body bytes delivered in the current feed
        self._special: dict[bytes, bytes] = {}  # the last value of each _SPECIAL header
        self._headers: dict[bytes, list[bytes]] = {}  # the table of the request's headers

    def connectionMade(self) -> None:
        super().connectionMade()
        self._max_headers = self.limits.max_headers
        self._max_head_size = self.limits.max_head_size
        if type(self.transport) is tcp.Server:  # not TLS, not a test's fake
            self._socket = self.transport.getHandle()
        lean = self.lean_request
        if lean is not None and isinstance(self.requestFactory, type) and issubclass(lean, self.requestFactory):
            self.requestFactory = lean

    # The site's request class with twisted.web's hot paths done with less work, used
    # when it subclasses the site's requestFactory (set by the site).
    lean_request: Any = None

    # -- receiving ---------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._twisted:
            HanjiChannel.dataReceived(self, data)
            return
        if self._refused or self._later is not None or self._last:
            return  # refused (lingering, or waiting to answer), or closing: throw the rest away
        if self._at < len(self._pending):
            self._pending = self._pending[self._at:] + data
        else:
            self._pending = data
        self._at = 0
        self._pump()

    def _pump(self) -> None:
        """Start waiting requests and parse waiting bytes, in order, until a request
        is being answered, the output is full, or nothing is left."""
        if self._pumping:
            return  # a request finished inside a render: the running loop goes on
        self._pumping = True
        try:
            while not (self._answering or self.paused or self._halted):
                if self._ready:
                    self._start(self._ready.popleft())
                elif self._later is not None:
                    status, reason = self._later
                    self._later = None
                    self._refuse(status, reason)
                elif self._twisted_next:
                    self._hand_to_twisted()
                    return
                elif self._at < len(self._pending) and not self._last:
                    size = SLICE + (self._body_left or 0)
                    data, at = self._pending, self._at
                    if at == 0 and len(data) <= size:
                        chunk: Any = data
                    else:
                        chunk = memoryview(data)[at:at + size]
                    self._at = at + len(chunk)
                    self._feed(chunk)
                else:
                    break
        finally:
            self._pumping = False
        if self._halted:
            if self._upgraded:
                rest = self._pending[self._at:]
                self._pending, self._at = b"", 0
                if rest:
                    self.dataReceived(rest)  # now the websocket's
            return
        if self._at >= len(self._pending):
            self._pending, self._at = b"", 0
        if self._phase != _IDLE:
            # A request still arriving: the idle time starts again (an answered one
            # restarted it in requestDone).
            self.resetTimeout()
            self._rearm()
        if self._held or self.paused or (self._answering and len(self._pending) - self._at
                                         > READ_AHEAD):
            self._hold_or_read()

    def _feed(self, chunk: Any) -> None:
        """Parse ``chunk``, queueing the requests it completes; reactor thread."""
        self._begun = 0
        self._body_in_feed = 0
        self._feeding = True
        try:
            if self._chunks is not None and self._phase == _BODY and not self._announce(chunk):
                return  # a chunk announced past the body limit: refused
            self._data = chunk
            self._parse(chunk)
        finally:
            self._feeding = False
            self._data = b""

    def _parse(self, chunk: Any) -> None:
        self._started_idle = started_idle = self._phase == _IDLE
        try:
            self._parser.feed_data(chunk)
        except HttpParserUpgrade as exc:
            # llhttp stopped after an upgrade request: keep what follows for later.
            self._at -= len(chunk) - int(exc.args[0])
            return
        except HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):
                log.error("The httptools channel failed on a request from %s; answered 400.",
                          getattr(self.getPeer(), "host", "?"), exc_info=exc.__context__ or exc)
                self._malformed("the server could not read it")
            return
        except HttpParserInvalidMethodError:
            if started_idle and not self._answering:
                # Its bytes start where the requests completed in this feed end.
                done = len(self._ready)
                start = _message_end(bytes(chunk), done) if done else 0
                if start is not None:
                    self._forget_parsing()
                    self._at -= len(chunk) - start
                    self._twisted_next = True  # once the requests before it are answered
                    return
            self._malformed("a method the parser does not know")
            return
        except HttpParserError as exc:
            self._malformed(str(exc) or "unparsable")
            return
        if self._phase == _HEAD:
            # A head still arriving: count what httptools holds of it (a header
            # value in pieces is invisible until complete).
            self._head_bytes += len(chunk) - self._body_in_feed
            self._tail = bytes(chunk[-3:])
            if self._head_bytes > self.limits.max_head_size:
                if self._header_size + len(self._url) + 32 < self.limits.max_head_size:
                    self._line_too_long()  # what is complete is small: one line is long
                else:
                    self._head_too_large()

    def _forget_parsing(self) -> None:
        """Drop the request whose head llhttp refused (twisted.web parses it again)."""
        if self._parsing is not None and self.requests and self.requests[-1] is self._parsing:
            self.requests.pop()
        self._parsing = None
        self._phase = _IDLE

    def _hand_to_twisted(self) -> None:
        """Let twisted.web's own parser take the connection from the next unparsed
        byte on (llhttp refused the method of the request starting there); reactor
        thread, once the requests before it are answered."""
        self._twisted = self._halted = True
        rest = self._pending[self._at:]
        self._pending, self._at = b"", 0
        self._release()
        HanjiChannel.dataReceived(self, rest)

    # -- httptools' callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._begun += 1
        self._phase = _HEAD
        self._head_started = time.monotonic()
        self._url = b""
        self._head_bytes = 0
        self._header_count = 0
        self._header_size = 0
        self._body_left = None
        self._special = {}
        self._hosts = 0
        request = self.requestFactory(self)
        self.requests.append(request)
        self._parsing = request
        self._headers = _compat.raw_headers(request.requestHeaders)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_head_size:  # its exact length is checked whole
            self._refuse(414, f"the request line is more than {self.limits.max_request_line} bytes "
                              "long. Send a shorter URL (put large data in a POST body).")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._phase != _HEAD:
            return  # a chunked body's trailer: ignored, as twisted.web does
        count = self._header_count = self._header_count + 1
        size = self._header_size = self._header_size + len(name) + len(value) + 4
        if count > self._max_headers or size + len(self._url) > self._max_head_size:
            self._header_limit(name, value)
        if len(name) in _SPECIAL_LENGTHS:
            lowered = name.lower()
            if lowered in _SPECIAL:
                if lowered == b"host":
                    self._hosts += 1
                self._special[lowered] = value
        # Headers.addRawHeader, without re-checking what llhttp checked (no CR or
        # LF in a value, a token for a name).
        self._headers.setdefault(_header_name(name), []).append(value.rstrip(b" \t"))

    def _header_limit(self, name: bytes, value: bytes) -> None:
        """Refuse a head past ``max_headers`` fields or ``max_head_size`` bytes (431)."""
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"the request has more than {self.limits.max_headers} header fields. "
                              "Send fewer headers.")
        elif len(name) + len(value) + 4 > self.limits.max_head_size:
            self._line_too_long()
        else:
            self._head_too_large()
        raise _Stop

    def on_headers_complete(self) -> None:
        parser, request = self._parser, self._parsing
        self._phase = _BODY
        if self._head_timer is not None:
            self._cancel(head=True)
        command = parser.get_method()
        version = _VERSIONS.get(parser.get_http_version())
        uri = self._url
        self._command, self._path, self._version = command, uri, version
        if version is None:
            self._malformed(f"HTTP version {parser.get_http_version()}; send HTTP/1.1 or HTTP/1.0")
            raise _Stop
        line_length = len(command) + len(uri) + len(version) + 2
        if line_length > self.limits.max_request_line:
            self._refuse(414, f"the request line is {line_length} bytes long, more than the "
                              f"{self.limits.max_request_line} allowed. Send a shorter URL (put "
                              "large data in a POST body).")
            raise _Stop
        special = self._special
        if self._hosts != 1:
            host_problem = self._host_problem(version)
            if host_problem is not None:
                self._refuse(400, host_problem)
                raise _Stop
        if b"content-length" in special:
            length: int | None = int(special[b"content-length"])  # llhttp checked it
        else:
            length = None if b"transfer-encoding" in special else 0
        if parser.should_upgrade() and length != 0:
            self._refuse(400, "an Upgrade request must not have a body (llhttp would not read it). "
                              "Send the body in a request without Upgrade.")
            raise _Stop
        self.length = length
        self._body_bytes = 0
        self._max_body = None
        self._chunks = None
        if length != 0:
            refused = self._early_refusal()  # parses the cookies
            if refused is not None:
                self._refuse(403, refused)
                raise _Stop
            self._max_body, resource, applet_id = self._body_limit()
            self._body_owner = (resource, applet_id)
            if length is not None and length > self._max_body:
                self._refuse_body(length, "is")
                raise _Stop
            self._body_left = length
            if length is None:
                self._watch_chunks()
        else:
            request.parseCookies()
        request.gotLength(length)
        if (b"expect" in special and version == b"HTTP/1.1" and not self._ready
                and not self._answering
                and (request.requestHeaders.getRawHeaders(b"expect") or [b""])[0].lower() == b"100-continue"):
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, data: bytes) -> None:
        self._body_in_feed += len(data)
        if self._body_left is not None:
            self._body_left -= len(data)
        self._parsing.handleContentChunk(data)
        if self._refused or self._later is not None:
            raise _Stop

    def on_message_complete(self) -> None:
        request, self._parsing = self._parsing, None
        self._phase = _IDLE
        self._body_left = None
        self._chunks = None
        if self._body_timer is not None:
            self._cancel(body=True)
        if b"connection" in self._special:
            keep_alive = bool(self.checkPersistence(request, self._version))
        else:
            keep_alive = self._version == b"HTTP/1.1"
        self._ready.append((request, self._command, self._path, self._version, keep_alive))
        if not keep_alive:
            self._last = True
            raise _Stop  # the last request of this connection: ignore what follows

    # -- answering ---------------------------------------------------------------------

    def _start(self, item: tuple[Any, bytes, bytes, bytes, bool]) -> None:
        """Render the next complete request; reactor thread."""
        request, command, uri, version, keep_alive = item
        self.persistent = keep_alive
        self._answering = True
        _compat.set_channel_handling_request(self, True)  # what HTTPChannel's producer methods read
        if self._head_timer is not None or self._body_timer is not None:
            self._cancel(head=True, body=True)  # rearmed when it is answered
        self._hold += 1
        try:
            request.requestReceived(command, uri, version)
        finally:
            self._hold -= 1
            if self._head is not None:
                self.flush_head()

    def requestDone(self, request: Any) -> None:
        """The first request was answered: start the next one, or close the
        connection after the last; reactor thread."""
        if self._twisted:
            super().requestDone(request)
            return
        if not self.requests or request is not self.requests[0]:
            raise TypeError(f"{request!r} finished out of turn")
        del self.requests[0]
        if self._head is not None:
            self.flush_head()
        self._answering = False
        _compat.set_channel_handling_request(self, False)
        self.resetTimeout()  # the idle time starts now (cheaper than a new timer)
        if not self.persistent:
            self._ready.clear()
            self.loseConnection()
            return
        if self._phase != _IDLE:
            self._head_started = time.monotonic()  # its head resumes now
        self._pump()

    def timeoutConnection(self) -> None:
        """The idle timeout passed: close, unless a request is being answered (the
        timeout does not apply then: wait another one); reactor thread."""
        if not self._twisted and (self._answering or self._ready):
            self.setTimeout(self.timeOut)
            return
        super().timeoutConnection()

    def getPeer(self) -> Any:
        """Return the client's address (kept: every request asks for it)."""
        if self._peer is None:
            transport: Any = self.transport
            self._peer = transport.getPeer()
        return self._peer

    def getHost(self) -> Any:
        """Return the server's address (kept: every request asks for it)."""
        if self._host is None:
            transport: Any = self.transport
            self._host = transport.getHost()
        return self._host

    def _rearm(self) -> None:
        """Time the head or body still arriving (none while a request is answered)."""
        if self._answering or self._ready:
            return
        if self._phase == _HEAD:
            if self._head_timer is None:
                self._start_head_timer()
        elif self._phase == _BODY and self._body_timer is None:
            self._start_body_timer()

    def _hold_or_read(self) -> None:
        """Stop reading the socket while requests or answers wait and more than
        Twisted's read-ahead is buffered; read it again once they are done."""
        waiting = len(self._pending) - self._at
        busy = self._answering or bool(self._ready)
        if self.paused or (busy and waiting > READ_AHEAD):
            if not self._held:
                self._held = True
                self.transport.pauseProducing()  # type: ignore[union-attr]
        elif self._held and not busy:
            self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            if not self.paused and self.transport is not None:
                self.transport.resumeProducing()  # type: ignore[attr-defined]

    # -- writing ----------------------------------------------------------------------
    # twisted.web writes a response head and its body in two transport writes, and the
    # transport sends them on the next reactor turn (after asking epoll to watch for
    # writability, and then not to). The channel sends the head and the first body
    # bytes together, at once, when nothing else waits to be sent: in order, since
    # anything written while bytes wait goes after them.

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)
            return
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        if self._hold:
            if self._head is not None:
                self.flush_head()
            self._head = head  # goes out with the body (at the latest when _hold ends)
        else:
            self._send(head)

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        self._send(data)

    def writeSequence(self, iovec: Any) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._send(head + b"".join(iovec))
        else:
            self._send(b"".join(iovec))

    def flush_head(self) -> None:
        """Send a response head held back for its body; reactor thread."""
        head, self._head = self._head, None
        if head:
            self._send(head)

    def _send(self, data: bytes) -> None:
        """Write ``data``: straight to the socket if nothing waits to be sent (the
        rest, if the socket takes part, through the transport), else through the
        transport, after what waits."""
        transport: Any = self.transport
        sock = self._socket
        if (sock is not None and data and transport.connected and not transport.disconnecting
                and not _compat.transport_unsent(transport)):
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the transport's own write meets the error and closes
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def loseConnection(self) -> None:
        if self._head is not None:
            self.flush_head()
        super().loseConnection()

    # -- refusing ---------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Refuse as :class:`HanjiChannel` does, after the answers of the requests
        received before the refused one (a refusal by the parser; the request being
        answered refuses at once, say for a broken form body)."""
        if (self._feeding and (self._ready or self._answering) and self._later is None
                and not self._refused):
            self._later = (status, reason)
            return
        if self._head is not None:
            self.flush_head()
        super()._refuse(status, reason)
        self._halted = True

    def _malformed(self, why: str) -> None:
        self._refuse(400, f"the request is malformed ({why}). Check what the client sends.")

    def _head_too_large(self) -> None:
        self._refuse(431, f"the request line and headers are more than {self.limits.max_head_size} "
                          "bytes. Send fewer or smaller headers (cookies included).")

    def _line_too_long(self) -> None:
        self._refuse(431, f"a header line is more than {self.limits.max_head_size} bytes long. Send "
                          "smaller headers (cookies included).")

    def _watch_chunks(self) -> None:
        """Follow the chunked body whose head just ended with :class:`ChunkSizes`, to
        see each chunk's size before its data (what follows the head in this feed
        first); if where the body starts is not known (a request pipelined behind
        another in one read), its bytes are only counted as they arrive."""
        data = bytes(self._data)
        start = -1
        if self._begun == 1 and self._started_idle:
            skip = len(data) - len(data.lstrip(b"\r\n"))  # stray CRLFs before the request
            end = data.find(b"\r\n\r\n", skip)
            start = end + 4 if end >= 0 else -1
        elif self._begun == 0:  # the head began in an earlier feed
            joined = self._tail + data
            end = joined.find(b"\r\n\r\n")
            start = end + 4 - len(self._tail) if end >= 0 else -1
        if start < 0:
            return
        self._chunks, self._announced = ChunkSizes(), 0
        if not self._announce(data[start:]):
            raise _Stop

    def _announce(self, data: Any) -> bool:
        """Follow the chunk sizes in ``data``; refuse (413) and return False once they
        announce more than the body limit."""
        chunks = self._chunks
        assert chunks is not None and self._max_body is not None
        for size in chunks.feed(bytes(data)):
            self._announced += size
            if self._announced > self._max_body:
                self._refuse_body(self._announced, "announces")
                return False
        if chunks.done:
            self._chunks = None
        return True

    # -- the websocket upgrade and the end -----------------------------------------------

    def upgrade_to_websocket(self, protocol: Any) -> None:
        if self._head is not None:
            self.flush_head()
        self._upgraded = self._halted = True
        self._release()
        super().upgrade_to_websocket(protocol)
        if not self._pumping and self._at < len(self._pending):
            # Upgraded later than its request's turn (an accept() that waited): what
            # the client sent meanwhile goes to the websocket once the handshake's
            # answer is out (the resource writes it after this returns).
            rest, self._pending, self._at = self._pending[self._at:], b"", 0
            self.callLater(0, lambda: self.dataReceived(rest))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._ready.clear()
        self._pending, self._at = b"", 0
        self._parser = None  # it holds our bound methods: no cycle to wait for
        super().connectionLost(reason)


_compat.override_websocket_upgrade(FastChannel, FastChannel.upgrade_to_websocket)
