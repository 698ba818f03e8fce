"""Browser fixtures: Debian's headless Chromium driven by Playwright, pages watched for JS errors.

Chromium comes from Debian (``make browser-deps``), not from ``playwright install``: Playwright's
own browser download does not work on our network. A missing browser fails the tests loudly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# Flags for a closed network: no sandbox (root in a container), no GPU, no phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's waits, generous so that a loaded machine is slow rather than red.
WAIT_MS = 15_000


class PageWatch:
    """Collect a page's JavaScript errors: console messages of type error and uncaught exceptions."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name = page, name
        self.errors: list[str] = []
        self._expected_http_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught exception: {exc}"))

    def expect_http_error(self, path: str) -> None:
        """Accept the browser's "Failed to load resource" line for a URL path that fails on purpose."""
        self._expected_http_errors.append(path)

    def _on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if msg.text.startswith("Failed to load resource") and any(url.endswith(p) for p in self._expected_http_errors):
            return
        self.errors.append(f"console.error: {msg.text} (at {url or 'unknown location'})")

    def assert_clean(self) -> None:
        """Fail if the page logged a JavaScript error, once its late requests (icons, favicon) are done."""
        self.page.wait_for_load_state("networkidle")
        assert not self.errors, f"JavaScript errors on page {self.name!r}:\n" + "\n".join(self.errors)


# Module scope, not session: between its calls Playwright's sync API marks its asyncio loop as
# running in the main thread, so while it lives any later test calling asyncio.run() fails.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright, shared by a test module; fail if it is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is missing ({exc}): run `make install` (pip install -e '.[test]').", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser-deps` (installs Debian's chromium).", pytrace=False)
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}\nReinstall it with `make browser-deps`.", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., PageWatch]]:
    """Return ``open_page(name, url)``: a page in a fresh browser context, watched for JS errors.

    Every page opened is saved as ``test-artifacts/<name>.png`` when the test ends, pass or fail.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    opened: list[tuple[Any, PageWatch]] = []

    def open_(name: str, url: str) -> PageWatch:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        watch = PageWatch(page, name)
        opened.append((context, watch))
        page.goto(url, wait_until="load")
        return watch

    yield open_
    for context, watch in opened:
        try:
            watch.page.screenshot(path=str(ARTIFACTS / f"{watch.name}.png"), full_page=True)
        finally:
            context.close()
