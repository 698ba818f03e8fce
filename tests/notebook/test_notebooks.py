"""The tutorial notebooks run top to bottom in a real kernel and show what they teach (issue 3, item 10)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from support.paths import NOTEBOOKS


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Execute ``notebooks/<name>`` in a fresh kernel with its own data dir and port."""
    (tmp_path / "no-applets").mkdir()
    monkeypatch.setenv("HANJI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HANJI_APPLETS", str(tmp_path / "no-applets"))
    monkeypatch.setenv("HANJI_PORT", "0")
    monkeypatch.delenv("HANJI_PUBLIC_URL", raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is committed with outputs"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _cell(nb: Any, marker: str) -> Any:
    """Return the code cell whose source is ``marker``, else the first that contains it."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in [c for c in code if c.source.strip() == marker] + [c for c in code if marker in c.source]:
        return cell
    raise AssertionError(f"no cell contains {marker!r}")


def _out(nb: Any, marker: str) -> str:
    """Return the text output of the cell found by :func:`_cell`."""
    parts = []
    for o in _cell(nb, marker).outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            parts.append(o.data.get("text/plain", "") + "\n")
    return "".join(parts)


def _html(nb: Any, marker: str) -> str:
    """Return the HTML output of the cell found by :func:`_cell`."""
    return "".join(o.data.get("text/html", "") for o in _cell(nb, marker).outputs
                   if o.output_type in ("display_data", "execute_result"))


def test_01_getting_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """01 loads Hanji, activates a hello applet, calls it, swaps it, awaits it and shows it."""
    nb = _execute("01-getting-started.ipynb", tmp_path, monkeypatch)
    banner = _out(nb, "%load_ext hanji")
    assert re.search(r"Hanji \S+ serves http://127\.0\.0\.1:\d+/ · 0 applets active · started in \d+\.\d\d s", banner)
    assert "Applet 'hello_notebook' v1 active" in _out(nb, "class HelloNotebook(Applet)")
    assert "<Response [200 OK] GET /res/hello_notebook/greet?name=Ada (application/json" in _out(nb, "response = hanji.get")
    assert "200 application/json\n{'greeting': 'Hello, Ada!', 'count': 1}" in _out(nb, "response.json()")
    assert "{'n': 7, 'square': 49}" in _out(nb, '@hanji.endpoint("square")')
    assert "Applet 'hello_notebook' v2 active" in _out(nb, "Bonjour")
    assert "{'greeting': 'Bonjour, Ada !'}" in _out(nb, 'hanji.get(("hello_notebook", "greet"), params={"name": "Ada"}).json()')
    assert "[1, 4, 9, 16, 25]" in _out(nb, "asyncio.gather")
    assert "<iframe data-hanji-url=" in _html(nb, 'hanji.show("hello_notebook")')
    status = _out(nb, "%hanji status")
    assert "reactor thread HanjiReactor: alive" in status
    assert re.search(r"hello_notebook\s+active\s+v2\s+notebook\s+/res/hello_notebook/greet\s+-", status)
    assert re.search(r"'http://127\.0\.0\.1:\d+/res/hello_notebook/greet'", _out(nb, "hanji.url("))


def test_02_twisted_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """02 shows every render-contract case, the reference's resources and a slow device that does not block the reactor."""
    nb = _execute("02-twisted-resources.ipynb", tmp_path, monkeypatch)
    tour = _out(nb, 'for name in ["bytes"')
    for line in [
        r"bytes\s+200 application/octet-stream\s+b'\\x00\\x01raw'",
        r"text\s+200 text/html; charset=utf-8\s+b'<b>h\\xc3\\xa9llo</b>'",
        r"json\s+200 application/json\s+b'\{\"method\": \"GET\", \"path\": \"/res/tour/json\"\}'",
        r"deferred\s+200 application/json\s+b'\{\"fired\": \"after 0.1 s\"\}'",
        r"coroutine\s+200 text/html; charset=utf-8\s+b'a coroutine answered'",
        r"manual\s+200 \S+\s+b'written by hand, then finished'",
    ]:
        assert re.search(line, tour), (line, tour)
    assert _out(nb, "good = hanji.post") == "200 All right\n500 I'm sorry Dave, I'm afraid i can't do that\n"
    assert _out(nb, "def give_response") == "IO finished with '42 bytes'\nIO failed: the line is down\n"
    device = _out(nb, "finished = []")
    assert "finished in this order: ['ping', " in device  # the reactor answered while the device was read
    assert "[{'channel': 1, 'value': 21.0}, {'channel': 2, 'value': 22.0}] pong" in device
    assert re.search(r"/res/device/sensor\s+twisted\s+device\s+resource Sensor", _out(nb, "%hanji routes"))
    assert all("Hanji: applet" not in getattr(o, "text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_03_protocols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """03 opens a TCP protocol in on_activate, converses with it from the notebook and closes it on swap and removal."""
    nb = _execute("03-protocols.ipynb", tmp_path, monkeypatch)
    assert "Applet 'thermostat' v1 active" in _out(nb, "class Thermostat(Applet)")
    assert _out(nb, "thermostat = Line(port)") == (
        "thermostat ready\n"
        "> GET        < 19.0\n"
        "> SET 21.5   < OK 21.5\n"
        "> SET warm   < ERR SET needs a number\n"
        "> SET 20     < OK 20.0\n"
        "> HISTORY    < 21.5 20.0\n"
        "> GET        < 20.0\n"
    )
    assert "'target': 20.0" in _out(nb, 'hanji.get(("thermostat", "state")).json()')
    assert "new state: {'target': 19.0" in _out(nb, "old_port = port")
    assert _out(nb, "def is_listening") == (
        "old port still open: False\nnew port open: True\nafter deactivate, new port open: False\n")


def test_04_django_applets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """04 defines models in cells, migrates them, uses the ORM from cells, serves views and a hanji.callback template."""
    nb = _execute("04-django-applets.ipynb", tmp_path, monkeypatch)
    assert "Create model Task" in _out(nb, 'hanji.migrate("todo", reset=True)')
    assert "3 tasks\n['· Write the applet', '· Call it from the notebook', '· Show it']" in _out(nb, "Task.objects.create(title=title)")
    assert "Applet 'todo' v1 active" in _out(nb, "class Todo(Applet)")
    assert "<li>· Show it</li></ul>\n<p>3 still open.</p>" in _out(nb, 'hanji.get("/applets/todo/")')
    assert "{'id': 1, 'title': 'Write the applet', 'done': True}" in _out(nb, 'hanji.post(("todo", "toggle")')
    assert "hanji.callback(\\'todo\\', \\'toggle\\', {id: 1})" in _out(nb, "home = hanji.get")
    assert "Add field priority to task" in _out(nb, "%hanji migrate todo")
    assert "['· [1] Show it', '✔ [2] Write the applet', '· [2] Call it from the notebook']" in _out(nb, "update(priority=1)")
    assert "2 open tasks; 3 in all" in _out(nb, "acount()")


def test_05_from_notebook_to_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """05 records %%applet cells, exports them with verify=True, serves the package with --reload and sees an edit live."""
    nb = _execute("05-from-notebook-to-package.ipynb", tmp_path, monkeypatch)
    assert "Applet 'guestbook' v1 active" in _out(nb, "class Guestbook(Applet)")
    calls = _out(nb, 'live = hanji.ws("guestbook", "live", json=True)')
    assert "{'id': 1, 'name': 'Ada'}\n{'id': 2, 'name': 'Grace'}\n" in calls
    assert "the websocket got {'id': 1, 'name': 'Ada'} and {'id': 2, 'name': 'Grace'}" in calls
    exported = _out(nb, 'result = hanji.export("guestbook", "applets", verify=True)')
    assert f"Exported applet 'guestbook' to {tmp_path}/applets/guestbook/" in exported
    assert "verify: 3 requests replayed against the package" in exported and "same answers" in exported
    files = _out(nb, 'print(sorted(str(p.relative_to("applets"))')
    for name in ("guestbook/__init__.py", "guestbook/models.py", "guestbook/webUI.py",
                 "guestbook/templates/content.html", "guestbook/migrations/0001_initial.py"):
        assert f"'{name}'" in files
    assert "applet = Guestbook()" in files
    assert "{'greeting': 'Welcome', 'names': ['Ada', 'Grace']}" in _out(nb, "server = subprocess.Popen(")
    assert "{'greeting': 'Welcome back', 'names': ['Ada', 'Grace']}" in _out(nb, "webui = Path(")
    assert "hanji serve exited with 0" in _out(nb, "server.terminate()")
