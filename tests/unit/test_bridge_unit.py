"""The WSGI bridge to Django (hanji.django.bridge) with Twisted's fakes: a HanjiSite over
a StringTransport, a reactor that queues ``callFromThread`` calls for the test thread
(standing for the reactor) and a pool that runs its jobs when the test says."""

from __future__ import annotations

import logging
import queue
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionLost

from hanji._exceptions import DjangoPoolFull
from hanji.django.bridge import ENVIRON_KEY, TOKEN_HEADER_KEY, DjangoResource
from hanji.django._exchange import WINDOW, Exchange
from hanji.server.http.site import HanjiSite
from support.polling import wait_until

TOKEN = "s3cret-token"
WAIT = 20.0  # a hang guard, never a timed assertion


class Reactor(Clock):
    """Queues ``callFromThread`` calls (from any thread) and counts them; the test
    thread runs them with :meth:`run_pending`, as the reactor would."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self.handed_out = 0
        self._lock = threading.Lock()

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self.handed_out += 1
        self.pending.put((f, args))

    def run_pending(self) -> int:
        """Run the calls queued so far; return how many ran."""
        ran = 0
        while True:
            try:
                f, args = self.pending.get_nowait()
            except queue.Empty:
                return ran
            f(*args)
            ran += 1


class Pool:
    """The part of DjangoPool the bridge uses; jobs wait until the test runs them."""

    max = 1
    queue = 0

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []
        self.funcs: list[Callable[..., Any]] = []
        self.submitted = 0
        self.is_full = False

    def full(self) -> bool:
        return self.is_full

    def overloaded(self, what: str) -> DjangoPoolFull:
        return DjangoPoolFull(f"{what} was not run: the Django pool is full.", retry_after=2)

    def submit(self, on_result: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        self.submitted += 1
        self.funcs.append(func)
        self.jobs.append(lambda: func(*args, **kw))

    def exchange(self) -> Exchange:
        """Return the Exchange whose run() is the last job."""
        return self.funcs[-1].__self__  # type: ignore[attr-defined, no-any-return]

    def run_here(self) -> None:
        """Run the queued jobs in the test thread (the worker's part)."""
        while self.jobs:
            self.jobs.pop(0)()

    def run_in_thread(self) -> threading.Thread:
        """Run the next job on a thread of its own, as a Django worker would."""
        thread = threading.Thread(target=self.jobs.pop(0), name="HanjiDjango-test", daemon=True)
        thread.start()
        return thread


class Setup:
    """A HanjiSite whose root is the Django bridge serving ``app``, on a StringTransport."""

    def __init__(self, app: Callable[..., Any], stall_timeout: float | None = None) -> None:
        self.reactor = Reactor()
        self.pool = Pool()
        self.server = types.SimpleNamespace(token=TOKEN)
        self.resource = DjangoResource(self.reactor, self.pool, app, self.server,  # type: ignore[arg-type]
                                       stall_timeout)
        site = HanjiSite(self.resource)  # type: ignore[arg-type]
        self.channel = site.buildProtocol(None)
        self.channel.callLater = self.reactor.callLater  # type: ignore[method-assign]
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    def send(self, head: str, body: bytes = b"") -> None:
        self.channel.dataReceived(head.replace("\n", "\r\n").encode() + b"\r\n" + body)

    def answer(self) -> tuple[bytes, bytes]:
        """Return the head and the body written so far."""
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        return head, body

    def lose_connection(self) -> None:
        """The client goes away (what a TCP transport tells its protocol)."""
        self.channel.connectionLost(Failure(ConnectionLost("gone")))


class Body:
    """A whole response body as Django's HttpResponse is: iterable, ``streaming`` False,
    closed after the response."""

    streaming = False

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts
        self.closed_on: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.parts)

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


class Stream:
    """A streamed body that counts the chunks taken from it and whether it was closed."""

    def __init__(self, chunks: int, size: int, fail_at: int | None = None) -> None:
        self.chunks, self.size, self.fail_at = chunks, size, fail_at
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            if i == self.fail_at:
                raise ValueError("the stream broke")
            self.taken += 1
            yield b"%d" % (i % 10) * self.size

    def close(self) -> None:
        self.closed = True


def app_returning(body: Any, status: str = "200 OK", headers: list[tuple[str, str]] | None = None,
                  seen: list[dict[str, Any]] | None = None) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if seen is not None:
            seen.append(dict(environ, body=environ["wsgi.input"].read()))
        start_response(status, headers or [("Content-Type", "text/plain")])
        return body
    return app


GET = "GET /hello?x=1 HTTP/1.1\nHost: example.test\n"


# -- one hand-off in, one out ---------------------------------------------------------------


@pytest.mark.parametrize("body", [[b"hello ", b"world"], Body(b"hello ", b"world")], ids=["list", "django-like"])
def test_a_whole_response_takes_one_hand_off_in_and_one_out(body: Any) -> None:
    """A response that is not streamed is one job submitted to the pool and one call back to the reactor, written with its Content-Length."""
    setup = Setup(app_returning(body))
    setup.send(GET)
    assert (setup.pool.submitted, setup.reactor.handed_out) == (1, 0)
    setup.pool.run_here()
    assert setup.reactor.handed_out == 1
    assert setup.transport.value() == b""  # nothing written off the reactor
    assert setup.reactor.run_pending() == 1
    head, sent = setup.answer()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 11" in head and b"chunked" not in head.lower()
    assert b"Content-Type: text/plain" in head
    assert sent == b"hello world"
    if isinstance(body, Body):
        assert body.closed_on == threading.current_thread().name  # closed by the worker


def test_a_head_request_gets_the_length_and_no_body() -> None:
    """A HEAD request gets the status, the headers and the length of the body, without the body."""
    setup = Setup(app_returning([b"twelve bytes"]))
    setup.send("HEAD / HTTP/1.1\nHost: example.test\n")
    setup.pool.run_here()
    setup.reactor.run_pending()
    head, sent = setup.answer()
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 12" in head
    assert sent == b""


def test_the_environ_is_built_before_the_hand_off() -> None:
    """The environ carries the request's body, path, query, client and server, Hanji's server, and not Hanji's credential (noted for the CSRF exemption) while other credentials stay."""
    seen: list[dict[str, Any]] = []
    setup = Setup(app_returning([b"ok"], seen=seen))
    setup.send("POST /applets/x/y?a=b HTTP/1.1\nHost: example.test:8899\nContent-Type: text/plain\n"
               f"Content-Length: 4\nAuthorization: token {TOKEN}\nX-Forwarded-Prefix: /proxy/8899\n"
               "X-Custom: one\nX-Custom: two\n", b"data")
    setup.pool.run_here()
    environ = seen[0]
    assert environ["body"] == b"data"
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == "/proxy/8899" and environ["PATH_INFO"] == "/applets/x/y"
    assert environ["QUERY_STRING"] == "a=b"
    assert environ["CONTENT_TYPE"] == "text/plain" and environ["CONTENT_LENGTH"] == "4"
    assert environ["SERVER_NAME"] == "example.test" and environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "192.168.1.1"  # StringTransport's peer
    assert environ["HTTP_X_CUSTOM"] == "one,two"
    assert environ[ENVIRON_KEY] is setup.server
    assert "HTTP_AUTHORIZATION" not in environ and environ[TOKEN_HEADER_KEY] is True
    assert environ["wsgi.url_scheme"] == "http" and environ["wsgi.version"] == (1, 0)

    seen.clear()
    other = Setup(app_returning([b"ok"], seen=seen))
    other.send(f"GET / HTTP/1.1\nHost: h\nAuthorization: Token drf-key\nX-Hanji-Token: {TOKEN}\n")
    other.pool.run_here()
    assert seen[0]["HTTP_AUTHORIZATION"] == "Token drf-key"  # not Hanji's: Django's to judge
    assert "HTTP_X_HANJI_TOKEN" not in seen[0] and seen[0][TOKEN_HEADER_KEY] is True

    seen.clear()
    plain = Setup(app_returning([b"ok"], seen=seen))
    plain.send("GET / HTTP/1.1\nHost: h\nX-Hanji-Token: wrong\n")
    plain.pool.run_here()
    assert "HTTP_X_HANJI_TOKEN" not in seen[0] and seen[0][TOKEN_HEADER_KEY] is False


def test_a_chunked_body_reaches_django_whole() -> None:
    """A request body sent chunked (no Content-Length) reaches Django whole, read as WSGIRequest reads it (a LimitedStream of CONTENT_LENGTH bytes), not empty."""
    from django.core.handlers.wsgi import LimitedStream

    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen.append(LimitedStream(environ["wsgi.input"], int(environ["CONTENT_LENGTH"] or 0)).read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    setup = Setup(app)
    setup.send("POST /upload HTTP/1.1\nHost: example.test\nContent-Type: application/octet-stream\n"
               "Transfer-Encoding: chunked\n", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    setup.pool.run_here()
    assert seen == [b"hello world"]


def test_a_full_pool_is_a_503_without_a_job() -> None:
    """While the pool is full a Django request is answered 503 with Retry-After at once, and no job is submitted."""
    setup = Setup(app_returning([b"never"]))
    setup.pool.is_full = True
    setup.send(GET)
    head, sent = setup.answer()
    assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 2" in head.lower()
    assert b"Django pool is full" in sent
    assert setup.pool.submitted == 0


def test_an_application_error_is_a_500_with_the_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An exception raised by the application is answered 500 naming the request, and logged with its traceback."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raise ZeroDivisionError("no luck")

    setup = Setup(app)
    setup.send(GET)
    with caplog.at_level(logging.ERROR, logger="hanji.django"):
        setup.pool.run_here()
    setup.reactor.run_pending()
    head, sent = setup.answer()
    assert head.startswith(b"HTTP/1.1 500")
    assert b"GET /hello failed in Django (ZeroDivisionError)" in sent
    record = next(r for r in caplog.records if "ZeroDivisionError" in r.getMessage())
    assert record.exc_info is not None and "/hello" in record.getMessage()


def test_an_answer_for_a_client_gone_is_dropped() -> None:
    """A whole response ready after its client left is dropped without an error."""
    setup = Setup(app_returning([b"late"]))
    setup.send(GET)
    setup.lose_connection()
    setup.pool.run_here()
    setup.reactor.run_pending()  # would raise if it wrote to the lost request
    assert setup.transport.value() == b""


# -- streams ------------------------------------------------------------------------------------


def _pump_until(setup: Setup, condition: Callable[[], bool], message: str) -> None:
    """Run the reactor's queue until ``condition`` holds (hang guard: WAIT s)."""
    def step() -> bool:
        setup.reactor.run_pending()
        return condition()
    wait_until(step, WAIT, message, interval=0.005)


def test_a_stream_waits_while_the_transport_is_paused_and_resumes() -> None:
    """A streamed response stops taking chunks while the transport is over its bound and goes on when it drains, to a complete chunked answer."""
    stream = Stream(chunks=40, size=16 * 1024)
    setup = Setup(app_returning(stream))
    setup.send(GET)
    exchange = setup.pool.exchange()
    setup.channel.pauseProducing()  # as the transport does once its buffer passes the bound
    worker = setup.pool.run_in_thread()
    # Before the head is out the exchange is not yet the request's producer: the first
    # chunk goes, which registers it; pause again as the full transport would.
    _pump_until(setup, lambda: exchange._registered, "the stream never started")
    setup.channel.pauseProducing()
    _pump_until(setup, lambda: exchange.waiting and setup.reactor.pending.empty(), "the worker never waited")
    taken = stream.taken
    assert taken * 16 * 1024 <= WINDOW + 2 * 16 * 1024  # bounded: the window, not the stream
    setup.reactor.run_pending()
    assert stream.taken == taken and exchange.waiting  # still waiting while paused
    setup.channel.resumeProducing()
    _pump_until(setup, lambda: not worker.is_alive() and setup.reactor.pending.empty(), "the stream never ended")
    assert stream.taken == 40 and stream.closed
    head, sent = setup.answer()
    assert b"Transfer-Encoding: chunked" in head
    assert sent.endswith(b"0\r\n\r\n") and sent.count(b"9" * 1024) >= 3


def test_a_client_leaving_mid_stream_stops_it_and_closes_the_iterable() -> None:
    """When the client leaves while its stream waits for the transport, the worker stops iterating and closes the iterable."""
    stream = Stream(chunks=1000, size=16 * 1024)
    setup = Setup(app_returning(stream))
    setup.send(GET)
    exchange = setup.pool.exchange()
    worker = setup.pool.run_in_thread()
    _pump_until(setup, lambda: exchange._registered, "the stream never started")
    setup.channel.pauseProducing()
    _pump_until(setup, lambda: exchange.waiting, "the worker never waited")
    taken = stream.taken
    setup.lose_connection()
    worker.join(WAIT)
    assert not worker.is_alive() and stream.closed
    assert stream.taken == taken
    setup.reactor.run_pending()  # what was still queued is dropped without an error


def test_a_stream_to_a_client_that_reads_nothing_is_cut_after_the_stall_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    """A stream paused longer than its stall timeout aborts its connection and closes the iterable."""
    stream = Stream(chunks=1000, size=16 * 1024)
    setup = Setup(app_returning(stream), stall_timeout=0.2)
    setup.send(GET)
    exchange = setup.pool.exchange()
    worker = setup.pool.run_in_thread()
    _pump_until(setup, lambda: exchange._registered, "the stream never started")
    setup.channel.pauseProducing()
    with caplog.at_level(logging.WARNING, logger="hanji.django"):
        _pump_until(setup, lambda: setup.transport.disconnecting and not worker.is_alive(),
                    "the stalled stream was never cut")
    assert stream.closed and stream.taken < 1000
    assert any("read nothing" in r.getMessage() for r in caplog.records)


def test_an_error_mid_stream_cuts_the_connection_and_closes_the_iterable(caplog: pytest.LogCaptureFixture) -> None:
    """An exception raised while a stream is sent is logged, the half-sent answer's connection is closed and the iterable closed."""
    stream = Stream(chunks=10, size=100, fail_at=3)
    setup = Setup(app_returning(stream))
    setup.send(GET)
    with caplog.at_level(logging.ERROR, logger="hanji.django"):
        setup.pool.run_here()
    setup.reactor.run_pending()
    assert stream.closed and setup.transport.disconnecting
    assert setup.answer()[0].startswith(b"HTTP/1.1 200")
    assert any("the stream broke" in r.getMessage() for r in caplog.records)


def test_a_streamed_head_request_stops_after_the_head() -> None:
    """A HEAD request for a streamed response takes one chunk (for the head), closes the iterable and sends no body."""
    stream = Stream(chunks=100, size=1000)
    setup = Setup(app_returning(stream, headers=[("Content-Length", "100000")]))
    setup.send("HEAD / HTTP/1.1\nHost: h\n")
    setup.pool.run_here()
    setup.reactor.run_pending()
    head, sent = setup.answer()
    assert b"Content-Length: 100000" in head and sent == b""
    assert stream.taken == 1 and stream.closed
    assert setup.transport.value().count(b"HTTP/1.1") == 1


def test_the_file_wrapper_reads_large_blocks_and_closes_the_file() -> None:
    """wsgi.file_wrapper reads a file in blocks of at least 32 kB (Django asks 4 kB) and closes it with the iterable."""
    import io

    seen: list[dict[str, Any]] = []
    setup = Setup(app_returning([b"ok"], seen=seen))
    setup.send(GET)
    setup.pool.run_here()
    wrapper_class = seen[0]["wsgi.file_wrapper"]
    data = io.BytesIO(bytes(range(256)) * 1024)  # 256 kB
    wrapper = wrapper_class(data, 4096)
    blocks = list(wrapper)
    assert [len(b) for b in blocks] == [32 * 1024] * 8 and b"".join(blocks) == data.getvalue()
    wrapper.close()
    assert data.closed
