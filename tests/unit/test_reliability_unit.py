"""The pieces behind the reliability bounds, without a server: chunk framing, log
truncation and rate limits, resource exhaustion."""

from __future__ import annotations

import errno
import logging
import sqlite3

import pytest

from hanji._exhaustion import exhaustion
from hanji._logfile import RefusalLog, short
from hanji.server.http.chunks import ChunkSizes


def test_chunk_sizes_are_seen_across_reads() -> None:
    """Each chunk's size is yielded once its size line is complete, whatever the read boundaries."""
    body = b"5\r\nabcde\r\n1a;ext=1\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"
    for cut in range(1, len(body)):
        sizes = ChunkSizes()
        seen = list(sizes.feed(body[:cut])) + list(sizes.feed(body[cut:]))
        assert seen == [5, 26, 0], cut
        assert sizes.done


def test_chunk_framing_stops_at_garbage() -> None:
    """A malformed size line ends the watch (Twisted's own decoder refuses it)."""
    sizes = ChunkSizes()
    assert list(sizes.feed(b"zz\r\nabc")) == []
    assert sizes.done


def test_short_cuts_long_values_and_says_how_long() -> None:
    """A long client-chosen value is cut to a prefix followed by its length."""
    assert short("abc") == "abc"
    cut = short("p" * 8000, 100)
    assert cut.startswith("p" * 100) and cut.endswith("(8000 characters)") and len(cut) < 130


def test_refusals_are_logged_a_few_per_window_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    """After the burst, refusals are counted, and the count is logged when the window ends."""
    log = RefusalLog(logging.getLogger("test.refusals"), burst=3, window=0.0)
    log.window = 3600.0
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        for i in range(50):
            log.refused(413, "refused %d", i)
        assert [r.getMessage() for r in caplog.records] == ["refused 0", "refused 1", "refused 2"]
        log._started -= 7200.0  # the window is over
        log.refused(403, "refused %d", 99)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[3] == "47 × 413 more refused requests in the last 3600 s were not logged one by one."
    assert messages[4] == "refused 99"


@pytest.mark.parametrize("error, found", [
    (OSError(errno.ENOSPC, "No space left on device"), "disk is full"),
    (OSError(errno.EMFILE, "Too many open files"), "no file descriptor"),
    (sqlite3.OperationalError("database or disk is full"), "disk is full"),
    (ValueError("bad input"), None),
    (OSError(errno.ENOENT, "No such file"), None),
])
def test_exhaustion_is_recognised_also_when_wrapped(error: Exception, found: str | None) -> None:
    """Full disks and missing file descriptors are recognised, directly or as the cause of another error."""
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        reason = exhaustion(outer)
    assert (reason is None) if found is None else (found in reason)


def test_a_stall_without_applet_code_is_not_charged_to_the_url_s_applet() -> None:
    """A stall whose stack holds no applet code names the request, but no applet, even
    when the URL being served is an applet's."""
    import sys

    from hanji.server.watchdog import StallWatchdog

    watchdog = StallWatchdog(reactor=None, threshold_ms=50, packages=lambda: {"someapp": "someapp"})
    frame = sys._getframe()  # this test's frame: no applet code on it
    applet_id, what, place, _ = watchdog._describe(frame, ("someapp", "GET /res/someapp/slow"))
    assert applet_id is None
    assert "GET /res/someapp/slow" in what and "test_reliability_unit.py" in place


def test_http_status_error_cuts_the_body_at_a_word_not_mid_word() -> None:
    """A long error body is cut at a word boundary in HTTPStatusError's message, saying how much more there is."""
    from types import SimpleNamespace

    from hanji import HTTPStatusError

    body = " ".join(f"word{i}" for i in range(200))
    error = HTTPStatusError(SimpleNamespace(method="GET", path="/res/x/y", status=500,
                                            reason="Internal Server Error", text=body))
    message = str(error)
    shown = message.split("Internal Server Error: ", 1)[1].split("…")[0]
    assert body.startswith(shown) and shown.split()[-1] in body.split()
    assert "more characters in .response.text" in message


def test_the_interpreter_s_housekeeping_is_not_a_stall() -> None:
    """A reactor found in the standard library's weakref callback (run by a garbage
    collection, as WeakKeyDictionary's remove() was at start-up) is not reported as a
    stall; an ordinary frame is."""
    import sys
    import weakref
    from types import SimpleNamespace

    from hanji.server.watchdog import _housekeeping

    keys: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
    remove = keys._remove  # the callback a collection runs for each dead key
    assert _housekeeping(SimpleNamespace(f_code=remove.__code__))  # type: ignore[arg-type]
    assert not _housekeeping(sys._getframe())
