"""The site behind a path-prefix reverse proxy (as jupyter-server-proxy serves it)."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

PREFIX = "/user/ada/proxy/8899"


class _PrefixProxy(http.server.BaseHTTPRequestHandler):
    """Strip PREFIX, forward to the Hanji server, and say so in X-Forwarded-Prefix."""

    upstream = ""

    def _forward(self) -> None:
        if not self.path.startswith(PREFIX + "/"):
            self.send_error(404, "outside the proxy prefix")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["X-Forwarded-Prefix"] = PREFIX
        req = urllib.request.Request(self.upstream + self.path[len(PREFIX):], data=body,
                                     headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, reply_headers, data = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, reply_headers, data = err.code, err.headers, err.read()
        self.send_response(status)
        for key, value in reply_headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxied(server: Any) -> Iterator[str]:
    """Return the URL of the Hanji home page behind a prefix proxy on loopback."""
    handler = type("Handler", (_PrefixProxy,), {"upstream": server.url})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{PREFIX}/"
    httpd.shutdown()
    httpd.server_close()


def test_home_page_and_callback_behind_prefix_proxy(proxied: str, open_page: Callable[..., Any]) -> None:
    """Behind a prefix proxy the page loads hanji.js and icons, and hanji.callback reaches the reactor."""
    watch = open_page("proxied-home", proxied)
    page = watch.page
    expect(page.locator("#applet-hello_world")).to_be_visible()
    assert page.evaluate("hanji.base") == PREFIX
    page.locator("#hello-good").click()
    expect(page.locator("#hello-answer")).to_have_text("All right")
    broken = page.eval_on_selector_all(
        "section.applet img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == []
    # This small proxy does not pass websocket upgrades: the chat card's attempts
    # are the only errors allowed, and they show its URL carries the prefix too.
    page.wait_for_load_state("networkidle")
    others = [e for e in watch.errors if "WebSocket connection" not in e]
    assert others == []
    assert page.evaluate("hanji.wsUrl('chat', 'room')").endswith(PREFIX + "/ws/chat/room")
