"""HanjiChannel's limits, driven byte by byte over a StringTransport and a Clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.static import Data

from hanji.server.http.limits import LINGER, HanjiChannel, Limits
from hanji.server.http.site import HanjiSite


class HalfClosingTransport(StringTransport):
    """A StringTransport that can half-close, as a TCP transport can."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Sized(Resource):
    """A resource with its own body limit."""

    isLeaf = True
    max_body = 5


class Counter(Resource):
    """A resource answering a POST with the length of the body it read."""

    isLeaf = True

    def render_POST(self, request: Any) -> bytes:
        return b"got %d" % len(request.content.read())


class PeekingRoot(Resource):
    """A root whose ``peek`` names the resource a URI goes to, as HanjiRoot's does."""

    def __init__(self) -> None:
        super().__init__()
        self.putChild(b"hi", Data(b"hello", "text/plain"))
        self.putChild(b"count", Counter())
        self.sized = Sized()

    def peek(self, uri: bytes) -> tuple[Any, str | None]:
        if uri.startswith(b"/res/small"):
            return self.sized, "tiny"
        return None, None


def connect(transport: StringTransport | None = None, **limits: Any) -> tuple[HanjiChannel, StringTransport, Clock]:
    """Return a connected channel of a HanjiSite with ``limits``, its transport and
    the Clock its timers run on."""
    site = HanjiSite(PeekingRoot(), limits=Limits(**limits))
    channel = site.buildProtocol(None)
    clock = Clock()
    channel.callLater = clock.callLater  # type: ignore[method-assign]
    transport = transport if transport is not None else StringTransport()
    channel.makeConnection(transport)
    return channel, transport, clock


def status_line(transport: StringTransport) -> bytes:
    return transport.value().split(b"\r\n", 1)[0]


def body(transport: StringTransport) -> str:
    return transport.value().split(b"\r\n\r\n", 1)[1].decode("utf-8")


def test_whole_request_in_one_read_is_served_without_a_timer() -> None:
    """A request arriving in one read is answered 200 and arms no head or body timer."""
    channel, transport, clock = connect()
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 200 OK"
    assert transport.value().endswith(b"hello")
    assert not transport.disconnecting
    # Only Twisted's idle timeout is pending.
    assert [c.func.__name__ for c in clock.getDelayedCalls()] == ["__timedOut"]


def test_content_length_over_max_body_is_413_before_the_body() -> None:
    """A Content-Length over max_body is answered 413 with the sizes, then closed."""
    channel, transport, _ = connect(max_body=10)
    channel.dataReceived(b"POST /hi HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 413 Content Too Large"
    assert b"\r\nconnection: close\r\n" in transport.value()
    assert b"\r\ncontent-type: text/plain; charset=utf-8\r\n" in transport.value()
    assert body(transport).startswith("413 Content Too Large: the body of POST /hi is 11 bytes, over "
                                      "the server's limit, 10 bytes.")
    assert transport.disconnecting


def test_content_length_at_max_body_is_accepted() -> None:
    """A body exactly max_body long is read and answered."""
    channel, transport, _ = connect(max_body=5)
    channel.dataReceived(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
    assert status_line(transport) == b"HTTP/1.1 200 OK"
    assert transport.value().endswith(b"got 5")
    assert not transport.disconnecting


def test_chunked_body_growing_past_max_body_is_413() -> None:
    """A chunked body is refused once its chunk sizes announce more than max_body, before that data arrives."""
    channel, transport, _ = connect(max_body=10)
    channel.dataReceived(b"POST /hi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n")
    assert transport.value() == b""
    channel.dataReceived(b"6\r\nabcdef\r\n")
    assert status_line(transport) == b"HTTP/1.1 413 Content Too Large"
    assert "POST /hi announces 11 bytes, over the server's limit, 10 bytes" in body(transport)
    assert transport.disconnecting


def test_chunked_body_ending_in_the_refused_read_is_answered_once() -> None:
    """A chunked body that passes the limit and ends in the same read gets only the 413."""
    channel, transport, _ = connect(max_body=10)
    channel.dataReceived(b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"b\r\nabcdefghijk\r\n0\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 413 Content Too Large"
    assert transport.value().count(b"HTTP/1.1 ") == 1
    assert b"got " not in transport.value()


def test_resource_max_body_names_the_resource_and_applet() -> None:
    """A resource's own max_body replaces the server's and the 413 names it and its applet."""
    channel, transport, _ = connect(max_body=1000)
    channel.dataReceived(b"POST /res/small?token=secret HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
    text = body(transport)
    assert text.startswith("413 Content Too Large: the body of POST /res/small is 6 bytes")
    assert "the limit of Sized (applet 'tiny'), 5 bytes" in text
    assert "Sized.max_body" in text
    assert "secret" not in text


def test_long_request_line_is_414() -> None:
    """A request line longer than max_request_line is answered 414 with its length."""
    channel, transport, _ = connect(max_request_line=50)
    channel.dataReceived(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 414 URI Too Long"
    assert "the request line is 114 bytes long, more than the 50 allowed" in body(transport)
    assert transport.disconnecting


def test_request_line_too_long_to_buffer_is_414() -> None:
    """A request line longer than the whole head limit is answered 414, not dropped."""
    channel, transport, _ = connect(max_request_line=50, max_head_size=80)
    channel.dataReceived(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n")
    assert status_line(transport) == b"HTTP/1.1 414 URI Too Long"
    assert "more than 50 bytes long" in body(transport)


def test_header_line_too_long_to_buffer_is_431() -> None:
    """A header line longer than the head limit is answered 431 after a valid request line."""
    channel, transport, _ = connect(max_head_size=80)
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nCookie: " + b"c" * 200 + b"\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert "a header line is more than 80 bytes long" in body(transport)


def test_too_many_headers_is_431() -> None:
    """More than max_headers header fields are answered 431 naming the limit."""
    channel, transport, _ = connect(max_headers=3)
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(5))
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_line(transport) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert "more than 3 header fields" in body(transport)
    assert b"\r\nconnection: close\r\n" in transport.value()


def test_too_large_head_is_431() -> None:
    """A request head over max_head_size bytes in total is answered 431."""
    channel, transport, _ = connect(max_head_size=200)
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"y" * 50) for i in range(5))
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_line(transport) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert "the request line and headers are more than 200 bytes" in body(transport)


def test_slow_head_is_408_at_header_timeout() -> None:
    """A head still incomplete header_timeout seconds after its first byte is answered 408."""
    channel, transport, clock = connect(header_timeout=5)
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHo")
    clock.advance(4.5)
    assert transport.value() == b""
    clock.advance(1)
    assert status_line(transport) == b"HTTP/1.1 408 Request Time-out"
    assert "did not arrive in full within 5 s of their first byte" in body(transport)
    assert transport.disconnecting


def test_trickling_head_times_out_from_its_first_byte() -> None:
    """A head sent in small pieces still times out header_timeout after its first byte."""
    channel, transport, clock = connect(header_timeout=5)
    for piece in (b"GET /hi HT", b"TP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n"):
        channel.dataReceived(piece)
        clock.advance(1.5)
    assert status_line(transport) == b"HTTP/1.1 408 Request Time-out"


def test_head_completed_in_time_cancels_the_head_timer() -> None:
    """A head finished before header_timeout is served and its timer is gone."""
    channel, transport, clock = connect(header_timeout=5)
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHo")
    clock.advance(2)
    channel.dataReceived(b"st: x\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 200 OK"
    clock.advance(10)
    assert b"408" not in transport.value()
    assert not transport.disconnecting


def test_slow_body_is_408_after_a_window() -> None:
    """A body bringing less than body_min_rate bytes/s over a body_timeout window is answered 408."""
    channel, transport, clock = connect(body_timeout=2, body_min_rate=10)
    channel.dataReceived(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 5)
    clock.advance(1)
    channel.dataReceived(b"a" * 5)
    assert transport.value() == b""
    clock.advance(1)
    assert status_line(transport) == b"HTTP/1.1 408 Request Time-out"
    assert "the request body arrived too slowly: 5 bytes in 2 s, less than 10 bytes/s" in body(transport)
    assert transport.disconnecting


def test_body_fast_enough_keeps_the_connection() -> None:
    """A body bringing enough bytes in each window is read in full and answered."""
    channel, transport, clock = connect(body_timeout=2, body_min_rate=10)
    channel.dataReceived(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
    for _ in range(3):
        clock.advance(1)
        channel.dataReceived(b"a" * 25)
        clock.advance(1)
        assert transport.value() == b""
    channel.dataReceived(b"a" * 15)
    assert status_line(transport) == b"HTTP/1.1 200 OK"
    assert transport.value().endswith(b"got 100")
    clock.advance(10)
    assert b"408" not in transport.value()


def test_idle_keep_alive_connection_is_closed_at_idle_timeout() -> None:
    """A keep-alive connection with no new request is closed after idle_timeout."""
    channel, transport, clock = connect(idle_timeout=7)
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.advance(6)
    assert not transport.disconnecting
    clock.advance(1.5)
    assert transport.disconnecting


def test_malformed_request_is_400_with_a_reason() -> None:
    """A malformed request (a bad Content-Length) is answered 400 with a reason and closed."""
    channel, transport, _ = connect()
    channel.dataReceived(b"GET /hi HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    assert status_line(transport) == b"HTTP/1.1 400 Bad Request"
    assert body(transport).startswith("400 Bad Request: the request is malformed")
    assert b"\r\nconnection: close\r\n" in transport.value()
    assert transport.disconnecting


def test_refusal_lingers_then_closes() -> None:
    """After a refusal the channel half-closes, drops what still arrives, and closes after LINGER s."""
    transport = HalfClosingTransport()
    channel, _, clock = connect(transport, max_body=10)
    channel.dataReceived(b"POST /hi HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert transport.write_closed and not transport.disconnecting
    channel.dataReceived(b"x" * 50 + b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value() == answer  # nothing more is answered
    clock.advance(LINGER)
    assert transport.disconnecting


def test_only_one_answer_per_refused_connection() -> None:
    """A second limit hit after a refusal writes nothing more."""
    channel, transport, clock = connect(max_body=10, header_timeout=1)
    channel.dataReceived(b"POST /hi HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
    first = transport.value()
    channel.dataReceived(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n")
    clock.advance(5)
    assert transport.value() == first
    assert first.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("field", ["max_body", "max_headers", "max_head_size", "max_request_line"])
def test_limits_refuse_non_positive_sizes(field: str) -> None:
    """Limits refuses a size of 0, naming the field."""
    with pytest.raises(ValueError, match=f"Limits.{field} must be a positive number"):
        Limits(**{field: 0})


def test_limits_refuse_negative_rate() -> None:
    """Limits refuses a negative body_min_rate."""
    with pytest.raises(ValueError, match="body_min_rate must be 0 or more"):
        Limits(body_min_rate=-1)
