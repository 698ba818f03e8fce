"""One Django request between the reactor and a Django worker, with as few hand-offs
as the response allows.

twisted.web's WSGIResource crosses threads for every ``write`` and waits for the
reactor each time (``blockingCallFromThread``). Here, as in gunicorn's gthread
worker and granian's WSGI workers, the worker runs the application on its own
and the reactor hears from it only when there is something to send:

- a response that is not streamed (a list or tuple of bytes, or any Django
  response whose ``streaming`` is False) is collected whole on the worker (status,
  headers, body), then ONE call on the reactor writes it with its
  ``Content-Length`` and finishes the request (granian's ``response_bytes`` for a
  list; the calls of responses finished while the reactor is busy share one
  ``reactor.callFromThread``: :class:`_Outbox`); the worker then closes the
  response (Django's ``request_finished``: the database connections are closed on the worker's thread, where they live);
- a streamed response (``StreamingHttpResponse``, ``FileResponse``, any other
  iterable) is iterated on the worker one chunk at a time, each chunk handed to the
  reactor without waiting for it. The worker keeps at most :data:`WINDOW` bytes
  posted and not yet written, and waits while the transport is over its bound
  (``--max-output``): the exchange is the request's push producer, so the
  transport pauses and resumes it. When the client goes away the worker stops
  iterating and closes the iterable; when the client reads nothing for
  ``stall_timeout`` seconds (the idle timeout) the connection is aborted.

Methods say which thread runs them: the worker's (``run`` and what it calls), or
the reactor's (the ``_on_reactor_*`` methods and the producer interface). The
attributes under ``_cond`` are shared by both.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Any, Callable, Iterable

from twisted.internet.interfaces import IPushProducer
from twisted.python import log as twisted_log
from twisted.web.http import NO_BODY_CODES
from zope.interface import implementer

from hanji import _compat
from hanji.server.http import answers

log = logging.getLogger("hanji.django")

# Bytes a streaming worker may have posted to the reactor and not yet written: the
# hand-offs are not waited for one by one, yet the reactor's queue stays bounded.
WINDOW = 128 * 1024

_SKIPPED_HEADERS = frozenset({"server", "date"})  # the server's own
_header_name = _compat.header_name_encoder()  # b"content-type" -> b"Content-Type", cached

Head = tuple[int, bytes, list[tuple[bytes, bytes]], bool]  # code, message, headers, has length


def _encode_head(status: Any, headers: Any) -> Head:
    """Return the WSGI ``status`` and ``headers`` as twisted.web takes them, or
    raise TypeError/ValueError saying what the application got wrong; Django
    worker thread."""
    if not isinstance(status, str):
        raise TypeError(f"the WSGI status must be a str such as '200 OK', not {status!r}.")
    code_text, _, message = status.partition(" ")
    code = int(code_text)
    encoded = []
    has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower in _SKIPPED_HEADERS:
            continue
        if lower == "content-length":
            has_length = True
        raw = value.encode("latin-1")
        if "\n" in value or "\r" in value:  # as Headers.addRawHeader: line breaks to spaces
            raw = b" ".join(raw.splitlines())
        encoded.append((name.encode("latin-1"), raw))
    return code, message.encode("latin-1"), encoded, has_length


class _Outbox:
    """Whole responses on their way to the reactor, with one wake-up for all those
    that arrive before it runs them: ``reactor.callFromThread`` writes to the
    reactor's waker pipe on every call, a system call and often a wake-up of its
    own. Calls run in the order put, each logged by Twisted if it raises, as
    ``callFromThread``'s are. ``put`` runs on a Django worker; ``_drain`` on the
    reactor thread."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._calls: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False  # a _drain is queued on the reactor or running; under _lock

    def put(self, call: Callable[..., None], *args: Any) -> None:
        """Have the reactor run ``call(*args)``; any thread."""
        with self._lock:
            self._calls.append((call, args))
            if self._scheduled:
                return
            self._scheduled = True
        self.reactor.callFromThread(self._drain)

    def _drain(self) -> None:
        """Run the calls put so far, and those put meanwhile; reactor thread."""
        calls, lock = self._calls, self._lock
        while True:
            with lock:
                if not calls:
                    self._scheduled = False
                    return
                call, args = calls.popleft()
            try:
                call(*args)
            except BaseException:
                twisted_log.err()


# One outbox per reactor (in practice one); the reactor is kept alive by its outbox.
_outboxes: dict[int, _Outbox] = {}
_outboxes_lock = threading.Lock()


def _outbox(reactor: Any) -> _Outbox:
    """Return ``reactor``'s outbox; any thread."""
    box = _outboxes.get(id(reactor))
    if box is None:
        with _outboxes_lock:
            box = _outboxes.setdefault(id(reactor), _Outbox(reactor))
    return box


def _is_whole(result: Any) -> bool:
    """Return True if the WSGI ``result`` is a whole body, not a stream (a list or
    tuple, or a Django response that is not streaming); any thread."""
    return type(result) in (list, tuple) or getattr(result, "streaming", None) is False


@implementer(IPushProducer)
class Exchange:
    """Run one Django request on a worker and answer it on the reactor.

    Build it on the reactor thread with the request and its environ (see
    :func:`hanji.django._environ.build_environ`), then submit :meth:`run` to the
    Django pool: that is the one hand-off in.
    """

    __slots__ = ("reactor", "request", "application", "environ", "stall_timeout", "_status",
                 "_headers", "_written", "_head_sent", "_cond", "_in_flight", "_paused", "_gone",
                 "waiting", "_registered", "__weakref__")

    def __init__(self, reactor: Any, request: Any, application: Callable[..., Any],
                 environ: dict[str, Any], stall_timeout: float | None = None) -> None:
        self.reactor = reactor
        self.request = request
        self.application = application
        self.environ = environ
        self.stall_timeout = stall_timeout or None
        # Set by start_response; the worker's.
        self._status: Any = None
        self._headers: Any = None
        self._written: list[bytes] = []  # what the legacy write() callable got
        self._head_sent = False  # worker: a head was handed to the reactor
        # Shared by the worker and the reactor, under _cond: made by a stream's
        # worker before its first chunk (a whole response needs none).
        self._cond: threading.Condition | None = None
        self._in_flight = 0  # bytes posted to the reactor, not yet written
        self._paused = False  # the transport is over its bound
        self._gone = False  # the client left, or the stream was stopped
        self.waiting = False  # the worker waits for the transport or the window (for tests)
        # Reactor thread only.
        self._registered = False

    # -- Django worker thread ---------------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        """The WSGI ``start_response``: keep the status and headers until the body
        is known; Django worker thread."""
        if exc_info is not None and self._head_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self._status, self._headers = status, headers
        return self._written.append

    def run(self) -> None:
        """Run the application and hand its response to the reactor; Django worker
        thread (the job the pool runs)."""
        try:
            result = self.application(self.environ, self.start_response)
        except BaseException:
            self._failed(None)
            return
        try:
            if _is_whole(result):
                body = b"".join(result)
                if self._written:
                    body = b"".join(self._written) + body
                head = _encode_head(self._status, self._headers)
                self._head_sent = True
                _outbox(self.reactor).put(self._on_reactor_respond, head, body)
            else:
                self._stream(result)
        except BaseException:
            self._failed(result)
            return
        self._close(result)

    def _stream(self, result: Iterable[bytes]) -> None:
        """Hand the chunks of a streamed response to the reactor as they come, within
        the window and while the transport takes them; Django worker thread."""
        self._cond = threading.Condition(threading.Lock())
        head_only = self.environ.get("REQUEST_METHOD") == "HEAD"
        for chunk in result:
            if self._written:
                chunk = b"".join(self._written) + chunk
                self._written.clear()
            if not chunk:
                continue
            if not self._send(chunk):
                return
            if head_only:
                break  # the head is out; a HEAD answer has no body to iterate for
        else:
            if self._written and not self._send(b"".join(self._written)):
                return
        head = None if self._head_sent else _encode_head(self._status, self._headers)
        self._head_sent = True
        self.reactor.callFromThread(self._on_reactor_end_stream, head)

    def _send(self, chunk: bytes) -> bool:
        """Post ``chunk`` to the reactor once the window and the transport allow;
        return False if the stream must stop (client gone, or stalled past
        ``stall_timeout``: the connection is then aborted). Django worker thread."""
        size = len(chunk)
        cond = self._cond
        assert cond is not None
        with cond:
            while not self._gone and (self._paused or (self._in_flight and self._in_flight + size > WINDOW)):
                self.waiting = True
                woken = cond.wait(self.stall_timeout)
                self.waiting = False
                if not woken and self._paused and not self._gone:
                    self._gone = True
                    self.reactor.callFromThread(self._on_reactor_stalled)
                    return False
            if self._gone:
                return False
            self._in_flight += size
        head = None if self._head_sent else _encode_head(self._status, self._headers)
        self._head_sent = True
        self.reactor.callFromThread(self._on_reactor_write, head, chunk)
        return True

    def _failed(self, result: Any) -> None:
        """Log the application's exception with its traceback and have the reactor
        answer 500 (or cut a response already started); Django worker thread."""
        method, path = self.environ.get("REQUEST_METHOD", "?"), self._path()
        error = sys.exc_info()[1]
        log.error("The Django application failed on %s %s: %s: %s. The client got %s; fix the "
                  "view or middleware in the traceback below.", method, path, type(error).__name__,
                  error, "its connection cut (the answer had started)" if self._head_sent else "a 500",
                  exc_info=True)
        summary = f"{method} {path} failed in Django ({type(error).__name__}); the server log has the traceback."
        self.reactor.callFromThread(self._on_reactor_fail, summary, self._head_sent)
        if result is not None:
            self._close(result)

    def _close(self, result: Any) -> None:
        """Close the application's iterable (Django's ``request_finished``), logging
        what it raises; Django worker thread."""
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except BaseException:
                log.exception("Closing the Django response of %s %s failed.",
                              self.environ.get("REQUEST_METHOD", "?"), self._path())

    def _path(self) -> str:
        return self.environ.get("SCRIPT_NAME", "") + self.environ.get("PATH_INFO", "")

    # -- reactor thread ----------------------------------------------------------------

    def _lost(self) -> bool:
        """Return True if the request can take no answer any more (its client left,
        or the drain answered it already); reactor thread."""
        request = self.request
        return bool(request.finished) or getattr(request, "channel", None) is None

    def _apply_head(self, head: Head, length: int | None) -> None:
        """Set the status and headers of the response (and ``Content-Length`` if
        ``length`` is known and the application gave none); reactor thread."""
        code, message, headers, has_length = head
        request = self.request
        request.setResponseCode(code, message)
        # Headers.addRawHeader's work without its per-call lookups: the name
        # canonicalised (cached); _encode_head turned line breaks into spaces.
        table = _compat.raw_headers(request.responseHeaders)
        for name, value in headers:
            key = _header_name(name)
            values = table.get(key)
            if values is None:
                table[key] = [value]
            else:
                values.append(value)
        if length is not None and not has_length and code >= 200 and code not in NO_BODY_CODES:
            table[b"Content-Length"] = [b"%d" % length]

    def _on_reactor_respond(self, head: Head, body: bytes) -> None:
        """Write a whole response and finish the request: the one hand-off out of a
        response that is not streamed; reactor thread."""
        if self._lost():
            return
        try:
            self._apply_head(head, len(body))
        except Exception as exc:
            self._answer_broken_head(exc)
            return
        request = self.request
        request.write(body)
        request.finish()

    def _on_reactor_write(self, head: Head | None, chunk: bytes) -> None:
        """Write one chunk of a stream (after its head, for the first); reactor thread."""
        request = self.request
        if not self._gone and self._lost():
            self._stop()
        if self._gone:
            return
        if head is not None:
            if not self._start_stream(head):
                return
        request.write(chunk)  # may pause this producer at once
        cond = self._cond
        assert cond is not None
        with cond:
            self._in_flight -= len(chunk)
            cond.notify()

    def _start_stream(self, head: Head) -> bool:
        """Send a stream's head: register as the request's push producer and watch
        for the client leaving; return False if the head was refused; reactor
        thread."""
        try:
            self._apply_head(head, None)
        except Exception as exc:
            self._answer_broken_head(exc)
            self._stop()
            return False
        request = self.request
        request.notifyFinish().addErrback(lambda _: self._stop())
        request.registerProducer(self, True)
        self._registered = True
        return True

    def _on_reactor_end_stream(self, head: Head | None) -> None:
        """Finish a stream whose iterable ended; reactor thread."""
        if self._gone or self._lost():
            return
        if head is not None and not self._start_stream(head):
            return
        request = self.request
        if self._registered:
            self._registered = False
            request.unregisterProducer()
        request.finish()

    def _on_reactor_fail(self, summary: str, started: bool) -> None:
        """Answer 500 for a failed application, or cut the response if its head
        went out already; reactor thread."""
        self._stop()
        if self._lost():
            return
        request = self.request
        if self._registered:
            self._registered = False
            request.unregisterProducer()
        if started or request.startedWriting:
            request.channel.loseConnection()
            return
        request.write(answers.answer(request, 500, summary))
        request.finish()

    def _on_reactor_stalled(self) -> None:
        """Abort the connection of a stream whose client read nothing for
        ``stall_timeout`` seconds; reactor thread."""
        if self._lost():
            return
        request = self.request
        log.warning("The client of %s %s read nothing of its streamed answer for %g s (the idle "
                    "timeout, hanji serve --idle-timeout); closed its connection.",
                    self.environ.get("REQUEST_METHOD", "?"), self._path(), self.stall_timeout)
        if self._registered:
            self._registered = False
            request.unregisterProducer()
        transport = request.channel.transport
        abort = getattr(transport, "abortConnection", None)
        (abort or transport.loseConnection)()

    def _answer_broken_head(self, exc: Exception) -> None:
        """Answer 500 for a head twisted.web refuses (a header it cannot send); reactor thread."""
        method, path = self.environ.get("REQUEST_METHOD", "?"), self._path()
        log.error("The Django response to %s %s has a status or header that cannot be sent (%s); "
                  "the client got a 500. Check the headers the view sets.", method, path, exc)
        request = self.request
        request.responseHeaders = type(request.responseHeaders)()
        request.write(answers.answer(request, 500, f"{method} {path}: Django's response could not be sent."))
        request.finish()

    def _stop(self) -> None:
        """Stop the stream: the worker stops iterating and closes the iterable; any
        thread."""
        cond = self._cond
        if cond is None:  # not a stream
            self._gone = True
            return
        with cond:
            self._gone = True
            cond.notify_all()

    # -- IPushProducer: the transport's flow control; reactor thread ------------------

    def pauseProducing(self) -> None:
        """The transport is over its bound: the worker waits before the next chunk."""
        assert self._cond is not None  # registered only once a stream started
        with self._cond:
            self._paused = True

    def resumeProducing(self) -> None:
        """The transport drained: the worker goes on."""
        assert self._cond is not None
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stopProducing(self) -> None:
        """The connection is going away: the worker stops."""
        self._stop()
