"""``%hanji watch DIR`` in a real kernel: applets edited on disk are reloaded in place."""

from __future__ import annotations

import urllib.error
from pathlib import Path

from support.kernels import Kernel, open_url
from support.polling import wait_until
from support.reload import copy_applets, edit

WAIT = 30.0  # seconds: a hang guard, not a measure


def _fetch(url: str) -> bytes:
    try:
        with open_url(url, timeout=30) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as err:
        return f"{err.code}".encode()


def _threads(kernel: Kernel) -> list[str]:
    return list(kernel.value("[t.name for t in __import__('threading').enumerate() if t.name == 'HanjiReload']"))


def test_watch_reloads_edits_and_stops(new_kernel, tmp_path: Path) -> None:
    """%hanji watch DIR serves an edited module and template from the next request,
    keeps the old version on a syntax error (shown under the next cell), says a
    models change needs a kernel restart, and %hanji watch --stop ends the watch."""
    applets = copy_applets(tmp_path)
    kernel = new_kernel(applets=applets)
    kernel.ok("%load_ext hanji\nimport hanji")
    url = kernel.value("hanji.url()").rstrip("/")
    version = url + "/res/reloadme/version"
    assert _fetch(version) == b"v1"
    result = kernel.ok(f"%hanji watch {applets}")
    assert "edits to bystander, reloadme reload in place" in result.stdout, result
    package = applets / "reloadme"

    edit(package / "answers.py", '"v1"', '"v2"')
    wait_until(lambda: _fetch(version) == b"v2", WAIT, "the edit was not served")
    (package / "templates" / "reloadme" / "page.html").write_text("<p>template two</p>\n")
    wait_until(lambda: b"template two" in _fetch(url + "/applets/reloadme/page"), WAIT, "template not served")

    edit(package / "answers.py", '"v2"\n', '"v3"\nbroken = (\n')
    shown = []
    wait_until(lambda: shown.append(kernel.ok("pass").text) or "answers.py, line 4" in shown[-1], WAIT,
               lambda: "".join(shown))
    assert _fetch(version) == b"v2"

    edit(package / "models.py", "# MARK", "# MARK (edited)")
    wait_until(lambda: shown.append(kernel.ok("pass").text) or "restart the kernel" in shown[-1], WAIT,
               lambda: "".join(shown))

    assert _threads(kernel) == ["HanjiReload"]
    assert "Stopped watching" in kernel.ok("%hanji watch --stop").stdout
    wait_until(lambda: _threads(kernel) == [], WAIT, "the watcher thread did not stop")


def test_stopping_hanji_stops_the_watch(new_kernel, tmp_path: Path) -> None:
    """%hanji stop ends the watch of %hanji watch."""
    applets = copy_applets(tmp_path)
    kernel = new_kernel(applets=applets)
    kernel.ok(f"%load_ext hanji\n%hanji watch {applets}")
    assert _threads(kernel) == ["HanjiReload"]
    kernel.ok("%hanji stop")
    wait_until(lambda: _threads(kernel) == [], WAIT, "the watcher thread did not stop")
