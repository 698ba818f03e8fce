"""``hanji export NOTEBOOK.ipynb DIR``: a saved notebook's ``%%applet`` cells exported without a
kernel, and the package served by a real ``hanji serve`` (issue 16, point 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from support.server import ServerProcess

SETUP = "%load_ext hanji\nimport hanji"

MODELS = '''%%applet guestbook --models
from django.db import models


class Entry(models.Model):
    name = models.CharField(max_length=40)

    class Meta:
        app_label = "guestbook"
        ordering = ["id"]


hanji.migrate("guestbook")'''

CODE = '''%%applet guestbook
import json

from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource, defer_to_django


def sign(name):
    return {"id": Entry.objects.create(name=name).id, "name": name}


def names():
    return [e.name for e in Entry.objects.all()]


class Sign(TwAppletResource):
    path = "sign"

    def render_POST(self, request):
        return defer_to_django(sign, request.args["name"][0])


class Names(TwAppletResource):
    path = "names"

    def render_GET(self, request):
        return defer_to_django(names)


class GuestbookWeb(WebUI):
    twisted_dynamic_resources = [Sign, Names]


class Guestbook(Applet):
    def on_activate(self):
        # Uses the model: this class cannot live in __init__.py.
        if not Entry.objects.exists():
            Entry.objects.create(name="the first guest")


hanji.activate(Guestbook, web=GuestbookWeb)'''


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def _export(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hanji", "export", *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=dict(os.environ, HANJI_ECHO_PORT="0"))


def test_a_saved_notebook_exports_to_a_package_that_serves(tmp_path: Path) -> None:
    """The %%applet cells of a saved notebook become a package (models and migration, resources, an applet whose on_activate uses the model) that hanji serve runs."""
    notebook = _notebook(tmp_path / "guestbook.ipynb", SETUP, MODELS, CODE, 'hanji.post(("guestbook", "sign"), data={"name": "Ada"})')
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "help.html").write_text("<p>help</p>")
    done = _export(tmp_path, str(notebook), "applets", "--applet", "guestbook", "--static", "static")
    assert done.returncode == 0, done.stderr
    package = tmp_path / "applets" / "guestbook"
    assert f"Exported applet 'guestbook' to {package}/" in done.stdout
    assert "migrations.CreateModel(" in (package / "migrations" / "0001_initial.py").read_text()
    assert "def __getattr__(name):" in (package / "__init__.py").read_text()  # applet read from webUI.py
    assert "applet = Guestbook()" in (package / "webUI.py").read_text()
    assert "from .models import Entry" in (package / "webUI.py").read_text()
    assert (package / "static" / "help.html").read_text() == "<p>help</p>"

    (tmp_path / "serve").mkdir()
    server = ServerProcess(tmp_path / "serve", [tmp_path / "applets"])
    try:
        assert json.loads(server.get("/res/guestbook/names").body) == ["the first guest"]
        assert json.loads(server.post("/res/guestbook/sign", b"name=Ada", headers={
            **server.default_headers("POST"), "Content-Type": "application/x-www-form-urlencoded"}).body) == \
            {"id": 2, "name": "Ada"}
        assert json.loads(server.get("/res/guestbook/names").body) == ["the first guest", "Ada"]
        assert server.get("/static/guestbook/help.html").text == "<p>help</p>"
    finally:
        server.stop()


def test_names_from_unmarked_cells_and_shell_lines_are_refused(tmp_path: Path) -> None:
    """Without a kernel too, the export refuses a name only an unmarked cell defines (naming that cell) and a shell line in an applet cell, writing nothing."""
    helper = "def polite(name):\n    return 'Dear ' + name"
    uses = CODE.replace('return {"id": Entry.objects.create(name=name).id, "name": name}',
                        'return {"id": Entry.objects.create(name=polite(name)).id, "name": name}')
    notebook = _notebook(tmp_path / "nb.ipynb", SETUP, helper, MODELS, uses)
    refused = _export(tmp_path, str(notebook), "applets")
    assert refused.returncode == 1
    assert "polite (used in webUI.py): defined in code cell 2: def polite(name):" in refused.stderr
    assert not (tmp_path / "applets").exists()

    notebook = _notebook(tmp_path / "nb2.ipynb", SETUP, MODELS, CODE.replace("import json", "listing = !ls"))
    refused = _export(tmp_path, str(notebook), "applets")
    assert refused.returncode == 1
    assert "code cell 3: listing = !ls" in refused.stderr and "IPython syntax" in refused.stderr
    assert not (tmp_path / "applets").exists()


def _layout_of(*sources: str) -> dict[str, str]:
    """Return the export's files for cells of applet 'demo' (no models), built in this process."""
    from hanji.exporting.package import build
    from hanji.exporting.sources import Cell

    cells = [Cell(f"code cell {i}", s) for i, s in enumerate(sources, 1)]
    files, _ = build("demo", cells, [], "a test", lambda *a: [])
    return files


def test_a_redefined_web_ui_keeps_its_inherited_template_and_a_plain_applet_goes_to_init() -> None:
    """The pattern of tutorial 01 (a WebUI redefined as a subclass of itself) exports the template of the first definition to content.html, and an Applet class that needs only imports to __init__.py."""
    first = '''from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource


class Demo(Applet):
    def on_activate(self):
        self.greeted = 0


class Hello(TwAppletResource):
    path = "hello"

    def render_GET(self, request):
        return "hello"


class DemoWeb(WebUI):
    twisted_dynamic_resources = [Hello]
    template = """<b>{{ applet.id }}</b>"""


hanji.activate(Demo, web=DemoWeb)'''
    again = '''class DemoWeb(DemoWeb):
    twisted_dynamic_resources = [Hello]


hanji.activate(Demo, web=DemoWeb)'''
    files = _layout_of(first, again)
    assert files["templates/content.html"].splitlines()[1:] == ["<b>{{ applet.id }}</b>"]
    assert "class Demo(Applet):" in files["__init__.py"] and "applet = Demo()" in files["__init__.py"]
    web = files["webUI.py"]
    assert "template" not in web and "class DemoWeb(WebUI):\n    twisted_dynamic_resources = [Hello]" in web
    assert web.rstrip().endswith("web = DemoWeb()") and "hanji" not in web.split("\n", 1)[1].replace("hanji.core", "")


def test_an_applet_instance_given_to_activate_is_exported_as_written() -> None:
    """hanji.activate(Applet(id=..., name=...), web=...) as tutorial 02 writes it exports that instance; a different id than the applet's name is refused."""
    cell = '''from hanji.core.applet import Applet, WebUI


class TourWeb(WebUI):
    pass


hanji.activate(Applet(id="ID", name="A tour"), web=TourWeb)'''
    files = _layout_of(cell.replace("ID", "demo"))
    assert 'applet = Applet(id="demo", name="A tour")' in files["webUI.py"]
    assert "from .webUI import applet" in files["__init__.py"]
    from hanji.exporting import ExportError

    try:
        _layout_of(cell.replace("ID", "tour"))
    except ExportError as exc:
        assert "the cells give the applet the id 'tour', but mark it %%applet demo" in str(exc)
    else:
        raise AssertionError("an applet id other than the package name was exported")
