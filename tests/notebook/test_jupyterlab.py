"""Hanji in a real JupyterLab 4 (issue 12). In headless Chromium at Jupyter's default
URL (``http://localhost:PORT/lab``): the frame of ``hanji.show`` is same-site with the
notebook page, so links inside it work; printed links open in a fresh browser; the 403
page tells a notebook user what to do. Through the lab's kernel websocket: a failed
activation shows the user's frames, a redefined resource is served. (Kernel shutdown
through the lab's REST API: tests/notebook/test_jupyter_shutdown.py.)"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import CHROMIUM, CHROMIUM_ARGS
from support.jupyter import JupyterProcess
from support.net import free_port
from support.polling import wait_until

WAIT = 90.0  # a hang guard, never a timed assertion
WAIT_MS = int(WAIT * 1000)

# The notebook's cells: an applet whose template links to one of its resources, the
# applet shown in a frame, the public link printed.
CELLS = [
    "%load_ext hanji\nimport hanji",
    '''from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource

class Pong(TwAppletResource):
    path = "pong"
    def render_GET(self, request):
        return "pong from the applet"

class LinkedWeb(WebUI):
    twisted_dynamic_resources = [Pong]
    template = '<a id="pong-link" href="/res/linked/pong">pong</a>'

hanji.activate(Applet(id="linked", name="Linked"), web=LinkedWeb)''',
    'hanji.show("linked")',
    'print("PUBLIC " + hanji.url(public=True))',
]


def _notebook(cells: list[str]) -> dict[str, Any]:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                    "language": "python"}},
        "cells": [{"cell_type": "code", "id": uuid.uuid4().hex[:8], "metadata": {}, "execution_count": None,
                   "outputs": [], "source": source} for source in cells],
    }


class JupyterLab(JupyterProcess):
    """A ``jupyter lab`` process with Jupyter's defaults but for its port, token and root."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__(root, env, module="jupyterlab", log_path=root.parent / "jupyterlab.log")

    def kernel_idle(self) -> bool:
        """Return True once a kernel of a notebook session has started and is idle."""
        status, sessions = self.api("GET", "/api/sessions")
        return status == 200 and any((s.get("kernel") or {}).get("execution_state") == "idle" for s in sessions)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """JupyterLab rooted in a folder holding the test notebook; its kernels get a random Hanji token."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    (tmp / "no-applets").mkdir()
    (root / "hanji-lab.ipynb").write_text(json.dumps(_notebook(CELLS)))
    env = dict(os.environ, HANJI_PORT=str(free_port()), HANJI_DATA=str(tmp / "data"),
               HANJI_APPLETS=str(tmp / "no-applets"), HANJI_ECHO_PORT="0",
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    env.pop("HANJI_TOKEN", None)
    env.pop("HANJI_PUBLIC_URL", None)
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    server = JupyterLab(root, env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright, launched as tests/browser/conftest.py does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def notebook(lab: JupyterLab, chromium: Any) -> Iterator[Any]:
    """The test notebook opened at http://localhost:PORT/lab with all its cells run from the Run menu."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"http://localhost:{lab.port}/lab/tree/hanji-lab.ipynb?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    wait_until(lab.kernel_idle, WAIT, lambda: f"the notebook's kernel did not start:\n{lab.log}")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.locator(".jp-OutputArea-output", has_text="PUBLIC http").wait_for()
    yield page
    context.close()


def _public_link(page: Any) -> str:
    text = page.locator(".jp-OutputArea-output", has_text="PUBLIC http").inner_text()
    return re.search(r"PUBLIC (\S+)", text).group(1)


def test_link_inside_the_shown_frame_opens(notebook: Any) -> None:
    """A link inside the frame of hanji.show, in a notebook page on localhost, opens with 200, not 403."""
    frame_element = notebook.locator(".hanji-show iframe")
    frame_element.wait_for()
    frame = notebook.frame_locator(".hanji-show iframe")
    frame.locator("#pong-link").wait_for()
    with notebook.expect_response(lambda r: "/res/linked/pong" in r.url) as answer:
        frame.locator("#pong-link").click()
    assert answer.value.status == 200, answer.value.text()
    assert "pong from the applet" in frame.locator("body").inner_text()
    assert frame_element.get_attribute("src").startswith("http://localhost:")  # same-site with the page


def test_printed_links_open_in_a_fresh_browser(notebook: Any, chromium: Any) -> None:
    """The link of hanji.url(public=True) and the resource link of hanji.activate's output open with 200 in a fresh browser."""
    activation = notebook.locator(".hanji-activation a").first.get_attribute("href")
    context = chromium.new_context()
    try:
        page = context.new_page()
        for link in (_public_link(notebook), activation):
            assert page.goto(link, timeout=WAIT_MS).status == 200, link
            context.clear_cookies()
    finally:
        context.close()


def test_refusal_page_tells_the_notebook_way(notebook: Any, chromium: Any) -> None:
    """A token-less request gets a 403 page that tells a notebook user to open hanji.show's link or hanji.url(public=True)."""
    base = _public_link(notebook).split("?")[0].rstrip("/")
    context = chromium.new_context()
    try:
        page = context.new_page()
        answer = page.goto(f"{base}/res/linked/pong", timeout=WAIT_MS)
        assert answer.status == 403
        text = page.locator("body").inner_text()
        assert "In a notebook" in text and "hanji.url(public=True)" in text, text
    finally:
        context.close()


def _in_a_new_kernel(lab: JupyterLab, cells: list[str]) -> list[dict[str, Any]]:
    """Run ``cells`` in a new kernel of ``lab`` (the kernel websocket, as the page
    does); return each cell's result, then shut the kernel down."""
    status, kernel = lab.api("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, kernel
    try:
        return [lab.run(kernel["id"], cell) for cell in cells]
    finally:
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")


def test_a_failed_activation_shows_the_user_s_frames_in_jupyterlab(lab: JupyterLab) -> None:
    """In a JupyterLab kernel, a failing on_activate fails its cell with the user's own
    frames only (no crochet, Twisted or Hanji frames) and says where the rest is."""
    results = _in_a_new_kernel(lab, ["%load_ext hanji\nimport hanji", (
        "from hanji.core.applet import Applet\n"
        "def plug_in():\n    raise RuntimeError('the sensor is unplugged')\n"
        "class Fragile(Applet):\n    def on_activate(self):\n        plug_in()\n"
        "hanji.activate(Fragile)\n")])
    error = "\n".join(results[1]["error"] or [])
    assert "RuntimeError: the sensor is unplugged" in error and "plug_in()" in error
    assert "crochet" not in error and "twisted" not in error and "/hanji/" not in error
    assert "hanji.errors('fragile')" in error and len(error.splitlines()) < 15


def test_a_redefined_resource_is_served_in_jupyterlab(lab: JupyterLab) -> None:
    """In a JupyterLab kernel, re-running a resource's cell and only the activate cell
    serves the new class and says so."""
    define = ("from hanji.core.utils import TwAppletResource\n"
              "class Version(TwAppletResource):\n    path = 'version'\n"
              "    def render_GET(self, request):\n        return '{}'\n")
    results = _in_a_new_kernel(lab, [
        "%load_ext hanji\nimport hanji\nfrom hanji.core.applet import Applet, WebUI",
        define.format("v1"),
        "class VersionWeb(WebUI):\n    twisted_dynamic_resources = [Version]\n"
        "hanji.activate(Applet(id='versioned'), web=VersionWeb)\nprint(hanji.get(('versioned', 'version')).text)",
        define.format("v2"),
        "hanji.activate(Applet(id='versioned'), web=VersionWeb)\nprint(hanji.get(('versioned', 'version')).text)",
    ])
    assert results[2]["stdout"].strip().endswith("v1")
    assert "Version was redefined after VersionWeb listed it" in results[4]["stderr"]
    assert results[4]["stdout"].strip().endswith("v2")
