"""The httptools channel (FastChannel) and its lean request, driven over a
StringTransport and a Clock: pipelining in order, bodies, refusals, upgrades, and
answers byte for byte equal to twisted.web's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.http_headers import Headers
from twisted.web.server import NOT_DONE_YET, Request

from hanji.server.http import _fast_channel
from hanji.server.http._fast_channel import FastChannel
from hanji.server.http.limits import HanjiChannel, Limits
from hanji.server.http.site import FastRequest, HanjiSite


class HalfClosingTransport(StringTransport):
    """A StringTransport that can half-close, as a TCP transport can."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Later(Resource):
    """Answers when the test calls ``answer()`` (NOT_DONE_YET)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        self.waiting.append(request)
        return NOT_DONE_YET

    def answer(self, body: bytes = b"later") -> None:
        request = self.waiting.pop(0)
        request.write(body)
        request.finish()


class Echo(Resource):
    """Answers the path and the body it read (and a few response features)."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        if request.args.get(b"cookie"):
            request.addCookie(b"k", b"v")
        if request.args.get(b"empty"):
            request.setResponseCode(204)
            return b""
        return b"path=" + request.uri

    def render_POST(self, request: Any) -> bytes:
        return b"got " + request.content.read()


class Streamed(Resource):
    """Answers in two writes without a length (chunked for HTTP/1.1)."""

    isLeaf = True

    def render_GET(self, request: Any) -> Any:
        request.write(b"one,")
        request.write(b"two")
        request.finish()
        return NOT_DONE_YET


class Upgrading(Resource):
    """Hands the connection to ``self.protocol`` as twisted.web.websocket does."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.protocol = Received()

    def render_GET(self, request: Any) -> Any:
        request.channel._protocolUpgradeForWebsockets(self.protocol)
        request.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        return NOT_DONE_YET


class UpgradingLater(Upgrading):
    """Upgrades when the test calls ``upgrade()`` (an accept() that waited)."""

    def render_GET(self, request: Any) -> Any:
        self.request = request
        return NOT_DONE_YET

    def upgrade(self) -> None:
        Upgrading.render_GET(self, self.request)


class Received(Protocol):
    """Keeps what it receives."""

    def __init__(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


class Root(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.later = Later()
        self.upgrading = Upgrading()
        self.putChild(b"later", self.later)
        self.putChild(b"echo", Echo())
        self.putChild(b"streamed", Streamed())
        self.putChild(b"up", self.upgrading)
        self.upgrading_later = UpgradingLater()
        self.putChild(b"uplater", self.upgrading_later)
        self.putChild(b"small", Small())


class Small(Echo):
    max_body = 5


class PeekingRoot(Root):
    """Names the resource a URI goes to, as HanjiRoot's ``peek`` does."""

    def peek(self, uri: bytes) -> tuple[Any, str | None]:
        return (self.children[b"small"], "tiny") if uri.startswith(b"/small") else (None, None)


def connect(parser: str = "httptools", **limits: Any) -> tuple[Any, HalfClosingTransport, Clock, PeekingRoot]:
    """Return a connected channel of a HanjiSite using ``parser``, its transport, its
    clock and the site's root."""
    root = PeekingRoot()
    site = HanjiSite(root, limits=Limits(**limits))
    site.http_parser = parser
    channel = site.buildProtocol(None)
    clock = Clock()
    channel.callLater = clock.callLater
    transport = HalfClosingTransport()
    channel.makeConnection(transport)
    return channel, transport, clock, root


def answers(transport: StringTransport) -> list[bytes]:
    """Return the status lines the transport received, in order."""
    return re.findall(rb"HTTP/1\.[01] \d{3}[^\r]*", transport.value())


GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


def test_the_site_builds_the_channel_its_parser_names() -> None:
    """``http_parser`` chooses FastChannel (with the lean request) or HanjiChannel."""
    fast, _, _, _ = connect("httptools")
    plain, _, _, _ = connect("twisted")
    assert type(fast) is FastChannel and fast.requestFactory is FastRequest
    assert type(plain) is HanjiChannel


def test_pipelined_requests_are_answered_in_order() -> None:
    """Three requests in one read, the first answered later: the others wait for it
    and all three answers go out in the order of the requests."""
    channel, transport, _, root = connect()
    channel.dataReceived(GET % b"/later" + GET % b"/echo?n=2" + GET % b"/echo?n=3")
    assert transport.value() == b""  # the second waits for the first
    root.later.answer()
    out = transport.value()
    assert out.index(b"later") < out.index(b"path=/echo?n=2") < out.index(b"path=/echo?n=3")
    assert answers(transport) == [b"HTTP/1.1 200 OK"] * 3


def test_a_read_of_many_pipelined_requests_builds_a_bounded_number() -> None:
    """A read holding a thousand pipelined requests behind a slow one builds at most
    a slice's worth of request objects, and stops reading the socket meanwhile."""
    channel, transport, _, root = connect()
    one = GET % b"/later"
    channel.dataReceived(one * 1000)
    assert len(channel.requests) <= _fast_channel.SLICE // len(one) + 1
    assert transport.producerState == "paused"
    for _ in range(1000):
        root.later.answer()
    assert answers(transport) == [b"HTTP/1.1 200 OK"] * 1000
    assert transport.producerState == "producing"


def test_a_chunked_body_in_pieces_reaches_the_resource() -> None:
    """A chunked body split across reads (inside a size line, inside the data)
    reaches the resource whole."""
    channel, transport, _, _ = connect()
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    for i in range(0, len(data), 7):
        channel.dataReceived(data[i:i + 7])
    assert transport.value().endswith(b"got hello world")


@pytest.mark.parametrize("head", [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
], ids=["length-and-chunked", "two-lengths", "obs-fold", "bad-chunk-size", "bad-chunk-end", "not-chunked-last"])
def test_smuggling_attempts_are_refused_with_400_and_closed(head: bytes) -> None:
    """Ambiguous framing (request smuggling) is answered 400 with a reason, the
    resource never sees the request, and the connection is closed."""
    channel, transport, _, _ = connect()
    channel.dataReceived(head + GET % b"/echo?smuggled")
    assert answers(transport) == [b"HTTP/1.1 400 Bad Request"]
    assert b"malformed" in transport.value()
    assert b"smuggled" not in transport.value() and b"got" not in transport.value()
    assert transport.write_closed


def test_a_refusal_waits_for_the_answers_before_it() -> None:
    """A pipelined request refused by the limits (413) gets its answer after the
    answer of the request before it, then the connection closes."""
    channel, transport, _, root = connect()
    channel.dataReceived(GET % b"/later" + b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
    assert transport.value() == b""
    root.later.answer()
    assert answers(transport) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 413 Content Too Large"]
    assert transport.write_closed


def test_a_chunk_announcing_too_much_is_refused_before_its_data() -> None:
    """A chunk whose size line takes the body past the resource's limit is refused
    with 413 as soon as the size line arrives, in the head's read or a later one."""
    for split in (False, True):
        channel, transport, _, _ = connect()
        head = b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        if split:
            channel.dataReceived(head)
            assert transport.value() == b""
            channel.dataReceived(b"3\r\nabc\r\n3")
            assert transport.value() == b""
            channel.dataReceived(b"\r\n")
        else:
            channel.dataReceived(head + b"ff\r\n")
        assert answers(transport) == [b"HTTP/1.1 413 Content Too Large"], split
        assert b"announces" in transport.value()


def test_an_unknown_method_goes_to_twisted_parser() -> None:
    """A method llhttp does not know (FOO) is answered as twisted.web answers it
    (Hanji's 405), and the connection goes on serving."""
    channel, transport, _, _ = connect()
    channel.dataReceived(b"FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n" + GET % b"/echo?after")
    assert answers(transport) == [b"HTTP/1.1 405 Method Not Allowed", b"HTTP/1.1 200 OK"]
    assert transport.value().endswith(b"path=/echo?after")


def test_an_unknown_method_pipelined_behind_others_waits_its_turn() -> None:
    """A FOO request pipelined in one read behind requests llhttp parsed is handed
    to twisted.web's parser after their answers, and answered in order."""
    channel, transport, _, root = connect()
    channel.dataReceived(GET % b"/echo" + GET % b"/later" + b"FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n"
                         + GET % b"/echo?last")
    root.later.answer()
    assert answers(transport) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 405 Method Not Allowed",
                                  b"HTTP/1.1 200 OK"]
    assert transport.value().endswith(b"path=/echo?last")


def test_bytes_after_an_upgrade_go_to_the_new_protocol() -> None:
    """What the client sent right after an upgrade request, in the same read, goes
    to the protocol the resource switched to, not to the HTTP parser."""
    channel, transport, _, root = connect()
    channel.dataReceived(b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                         b"\x81\x05hello")
    assert answers(transport) == [b"HTTP/1.1 101 Switching Protocols"]
    assert root.upgrading.protocol.data == b"\x81\x05hello"
    channel.dataReceived(b"more")
    assert root.upgrading.protocol.data.endswith(b"more")


def test_bytes_sent_before_a_late_upgrade_go_to_the_new_protocol_after_the_answer() -> None:
    """When the resource upgrades after its render returned, what the client sent
    meanwhile goes to the new protocol on the next reactor turn, after the 101."""
    channel, transport, clock, root = connect()
    channel.dataReceived(b"GET /uplater HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                         b"early")
    channel.dataReceived(b"-frames")
    root.upgrading_later.upgrade()
    assert answers(transport) == [b"HTTP/1.1 101 Switching Protocols"]
    assert root.upgrading_later.protocol.data == b""
    clock.advance(0)
    assert root.upgrading_later.protocol.data == b"early-frames"


def test_an_upgrade_request_with_a_body_is_refused() -> None:
    """An Upgrade request that announces a body (which llhttp would not read) is
    refused with 400 rather than its body parsed as a request."""
    channel, transport, _, _ = connect()
    channel.dataReceived(b"POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                         b"Content-Length: 18\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    assert answers(transport) == [b"HTTP/1.1 400 Bad Request"]


def test_the_idle_timeout_waits_while_a_request_is_answered() -> None:
    """The idle timeout does not cut a request answered later than it, and closes
    the connection once idle that long after the answer."""
    channel, transport, clock, root = connect(idle_timeout=5.0)
    channel.dataReceived(GET % b"/later")
    clock.advance(12)
    assert not transport.disconnecting
    root.later.answer()
    clock.advance(4)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting


def test_http_1_0_and_connection_close_end_the_connection_after_their_answer() -> None:
    """An HTTP/1.0 request or ``Connection: close`` closes after the answer; what
    the client sent after it is ignored."""
    for head in (b"GET /echo HTTP/1.0\r\n\r\n", b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        channel, transport, _, _ = connect()
        channel.dataReceived(head + GET % b"/echo?ignored")
        assert len(answers(transport)) == 1 and b"ignored" not in transport.value()
        assert transport.disconnecting


class Headered(Resource):
    """Answers the request headers as the resource sees them."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return repr(sorted(request.requestHeaders.getAllRawHeaders())).encode()


def test_request_headers_are_those_twisted_files() -> None:
    """A resource sees the same request headers (names in Twisted's case, repeated
    values in order, trailing blanks dropped) from either parser."""
    head = (b"GET /headered HTTP/1.1\r\nHost: x\r\nx-CUSTOM-header: a  \r\nContent-md5: m\r\ndnt: 1\r\n"
            b"X-Twice: 1\r\nx-twice: 2\r\nCookie: a=b; c=d\r\nEmpty:\r\n\r\n")
    seen = []
    for parser in ("twisted", "httptools"):
        channel, transport, _, root = connect(parser)
        root.putChild(b"headered", Headered())
        channel.dataReceived(head)
        seen.append(transport.value().split(b"\r\n\r\n", 1)[1])
    assert seen[0] == seen[1]
    assert b"(b'X-Custom-Header', [b'a'])" in seen[1] and b"(b'X-Twice', [b'1', b'2'])" in seen[1]


def test_the_lean_request_starts_as_twisted_request_does() -> None:
    """A FastRequest is built with the attributes (names, types, values) that
    twisted.web's Request.__init__ sets, so an upgrade of Twisted that adds one
    fails here."""
    channel, _, _, _ = connect()
    lean, plain = FastRequest(channel), Request(channel)
    assert sorted(vars(lean)) == sorted(vars(plain))
    for name, value in vars(plain).items():
        assert type(getattr(lean, name)) is type(value), name
        if not isinstance(value, Headers):
            assert getattr(lean, name) == value, name


@pytest.mark.parametrize("request_bytes", [
    GET % b"/echo?a=1",
    GET % b"/echo?cookie=1",
    GET % b"/echo?empty=1",
    GET % b"/streamed",
    GET % b"/nowhere",
    b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /streamed HTTP/1.0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 3\r\n\r\na=b",
], ids=["get", "cookie", "204", "chunked", "404", "head", "http-1.0-stream", "post", "form"])
def test_answers_are_byte_for_byte_those_of_twisted(request_bytes: bytes) -> None:
    """The httptools channel and its lean request answer exactly as twisted.web's
    channel and request do (the Date header aside)."""
    outputs = []
    for parser in ("twisted", "httptools"):
        channel, transport, _, _ = connect(parser)
        channel.dataReceived(request_bytes)
        outputs.append(re.sub(rb"Date: [^\r]*", b"Date: -", transport.value()))
    assert outputs[0] == outputs[1]
    assert outputs[1].startswith(b"HTTP/1.")
