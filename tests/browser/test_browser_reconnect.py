"""``hanji.connect`` in a real browser: reconnection with back-off after the server ends a connection.

The page is ``/res/wstest/blank`` (hanji.js and nothing else); the endpoints are ``/ws/wstest/drop``
(an echo the server ends on request, see tests/applets/common/wstest) and ``/ws/wstest/refuse`` (every
handshake refused with 403). In the page, ``window.log`` collects what the connection's hooks saw and
``window.delays`` every delay hanji.js asks of ``setTimeout``, so the back-off is checked on the
delays it chose rather than by timing the browser.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import pytest

MIN_DELAY, MAX_DELAY = 100, 400  # ms, small so that the tests are quick

# Record setTimeout delays and the hooks' calls, then connect to ``path``.
CONNECT = """([path, minDelay, maxDelay]) => {
  window.delays = [];
  const realSetTimeout = window.setTimeout;
  window.setTimeout = function (fn, ms, ...rest) {
    window.delays.push(ms);
    return realSetTimeout.call(window, fn, ms, ...rest);
  };
  window.log = {opens: 0, closes: [], messages: [], sendError: null};
  window.conn = hanji.connect("wstest", path, {
    minDelay: minDelay,
    maxDelay: maxDelay,
    onopen: () => { window.log.opens += 1; },
    onmessage: (data) => { window.log.messages.push(data); },
    onclose: (event, reconnecting) => {
      window.log.closes.push([event.code, reconnecting]);
      // Sent while disconnected: queued until the next connection opens.
      if (reconnecting && window.log.closes.length === 1) {
        window.conn.send("sent while disconnected");
      }
      if (!reconnecting) {
        try { window.conn.send("too late"); } catch (e) { window.log.sendError = e.message; }
      }
    },
  });
}"""


def _blank_page(server: Any, open_page: Callable[..., Any], name: str) -> Any:
    """Open the page that loads only hanji.js; return its PageWatch."""
    watch = open_page(name, server.url + "/res/wstest/blank")
    watch.page.wait_for_function("() => window.hanji && typeof hanji.connect === 'function'")
    return watch


def _events(server: Any, tag: str) -> list[dict[str, Any]]:
    """Return what the wstest endpoints' hooks recorded for ``tag``."""
    return json.loads(server.get(f"/res/wstest/events?tag={tag}").body)


def _assert_backoff(delays: list[int], attempts: int) -> None:
    """Check that ``delays`` are reconnection delays after ``attempts`` failures in a row:
    each within [d/2, d] (jitter) for d = MIN_DELAY doubled per failure, capped at MAX_DELAY."""
    assert len(delays) >= attempts, delays
    for i, delay in enumerate(delays[:attempts]):
        full = min(MAX_DELAY, MIN_DELAY * 2**i)
        assert full / 2 <= delay <= full, f"delay {i} is {delay} ms, expected {full / 2}..{full}: {delays}"


@pytest.mark.parametrize("how, code", [("close:1012", 1012), ("cut", 1006)], ids=["close-1012", "tcp-cut"])
def test_connect_reconnects_and_delivers_what_was_sent_meanwhile(
    server: Any, open_page: Callable[..., Any], how: str, code: int
) -> None:
    """When the server ends the connection (close frame or cut TCP), hanji.connect reopens it by itself and delivers a message sent while it was down; each reconnection starts from the shortest delay."""
    tag = uuid.uuid4().hex[:8]
    watch = _blank_page(server, open_page, f"reconnect-{how.replace(':', '-')}")
    page = watch.page
    page.evaluate(CONNECT, [f"drop?tag={tag}", MIN_DELAY, MAX_DELAY])
    page.wait_for_function("() => window.log.opens === 1")

    page.evaluate("conn.send('before')")
    page.wait_for_function("() => window.log.messages.includes('before')")
    page.evaluate(f"conn.send('{how}')")
    page.wait_for_function("() => window.log.opens === 2")
    page.wait_for_function("() => window.log.messages.includes('sent while disconnected')")
    assert page.evaluate("conn.connected") is True
    assert page.evaluate("window.log.closes") == [[code, True]]

    # A second drop: the back-off starts again from minDelay after a successful open.
    page.evaluate(f"conn.send('{how}')")
    page.wait_for_function("() => window.log.opens === 3")
    page.evaluate("conn.send('after')")
    page.wait_for_function("() => window.log.messages.includes('after')")
    _assert_backoff(page.evaluate("window.delays"), 1)
    _assert_backoff(page.evaluate("window.delays")[1:], 1)
    assert page.evaluate("window.delays.length") == 2

    # The server saw three connections; the message queued while down arrived on the second.
    seen = [(e["hook"], e["arg"]) for e in _events(server, tag) if e["hook"] in ("on_open", "on_message")]
    assert seen == [
        ("on_open", None), ("on_message", "before"), ("on_message", how),
        ("on_open", None), ("on_message", "sent while disconnected"), ("on_message", how),
        ("on_open", None), ("on_message", "after"),
    ]
    page.evaluate("conn.close()")
    watch.assert_clean()


def test_connect_backs_off_while_refused(server: Any, open_page: Callable[..., Any]) -> None:
    """While every handshake is refused, hanji.connect keeps trying with delays that double up to maxDelay."""
    watch = _blank_page(server, open_page, "reconnect-backoff")
    watch.expect_http_error("/ws/wstest/refuse")
    page = watch.page
    page.evaluate(CONNECT, ["refuse", MIN_DELAY, MAX_DELAY])
    page.wait_for_function("() => window.log.closes.length >= 5")
    page.evaluate("conn.close()")
    assert page.evaluate("window.log.opens") == 0
    assert all(closed == [1006, True] for closed in page.evaluate("window.log.closes")[:5])
    _assert_backoff(page.evaluate("window.delays"), 5)
    # The browser reports each refused handshake as a failed WebSocket connection: expected here.
    page.wait_for_load_state("networkidle")
    others = [e for e in watch.errors if not ("WebSocket connection" in e and "/ws/wstest/refuse" in e)]
    assert others == []


def test_normal_close_from_the_server_ends_the_connection_for_good(server: Any, open_page: Callable[..., Any]) -> None:
    """A normal close (1000) from the server is final: the hook is told no reconnection follows and send() then throws."""
    watch = _blank_page(server, open_page, "reconnect-normal-close")
    page = watch.page
    page.evaluate(CONNECT, [f"drop?tag={uuid.uuid4().hex[:8]}", MIN_DELAY, MAX_DELAY])
    page.wait_for_function("() => window.log.opens === 1")
    page.evaluate("conn.send('close:1000')")
    page.wait_for_function("() => window.log.closes.length === 1")
    assert page.evaluate("window.log.closes") == [[1000, False]]
    assert "closed for good" in page.evaluate("window.log.sendError")
    assert page.evaluate("window.delays") == []
    assert page.evaluate("conn.connected") is False
    watch.assert_clean()
