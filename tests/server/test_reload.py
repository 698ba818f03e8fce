"""``hanji serve --reload``: applets edited on disk are reloaded in the running server.

Each test serves a private copy of ``tests/applets/reload`` (``reloadme``, edited,
and ``bystander``, left alone) and edits it as an editor would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.http import request
from support.polling import wait_until
from support.reload import Load, copy_applets, edit
from support.ws import RawClient

WAIT = 30.0  # seconds: a hang guard, not a measure


@pytest.fixture
def applets(tmp_path: Path) -> Path:
    return copy_applets(tmp_path)


def _serve(start_server, applets: Path, env: dict[str, str] | None = None):
    return start_server([applets], ["--reload"], env)


def _body(server, path: str) -> bytes:
    answer = server.get(path)
    assert answer.status == 200, (answer.status, answer.body)
    return answer.body


def test_python_edit_swaps_under_load_keeping_other_websockets(start_server, applets: Path) -> None:
    """An edit of an applet's module is served after the edit while client threads
    loop requests (none fails) and another applet's websocket stays open."""
    server = _serve(start_server, applets)
    ws = RawClient(server, "/ws/bystander/echo")
    ws.send_frame(0x1, b"before")
    assert ws.read_frame() == (0x1, b"before")
    version = server.url + "/res/reloadme/version"
    load = Load(lambda: (lambda a: (a.status, a.body))(request(version, timeout=30)))
    try:
        wait_until(lambda: load.count((200, b"v1")) >= 20, WAIT, "the clients got no answers")
        edit(applets / "reloadme" / "answers.py", '"v1"', '"v2"')
        wait_until(lambda: load.count((200, b"v2")) >= 20, WAIT, lambda: f"v2 never served:\n{server.log}")
    finally:
        load.stop()
    assert load.failures() == []
    assert _body(server, "/res/reloadme/version") == b"v2"
    ws.send_frame(0x1, b"after")
    assert ws.read_frame() == (0x1, b"after")
    ws.close()
    assert "Applet 'reloadme' reloaded from disk (version 2)" in server.log


def test_request_in_flight_finishes_on_the_old_code(start_server, applets: Path) -> None:
    """A request already running when the applet is swapped is answered by the old
    code, while new requests get the new."""
    import threading

    server = _serve(start_server, applets)
    answers: list[bytes] = []
    slow = threading.Thread(target=lambda: answers.append(_body(server, "/res/reloadme/slow")))
    slow.start()
    wait_until((server.data / "slow-started").exists, WAIT, "the slow request never started")
    edit(applets / "reloadme" / "answers.py", '"v1"', '"v2"')
    wait_until(lambda: _body(server, "/res/reloadme/version") == b"v2", WAIT, lambda: server.log)
    (server.data / "slow-release").touch()
    slow.join(WAIT)
    assert answers == [b"v1"]


def test_syntax_error_keeps_the_old_version_and_names_file_and_line(start_server, applets: Path) -> None:
    """A syntax error leaves the old version serving and logs the file and line;
    fixing the file then reloads it."""
    server = _serve(start_server, applets)
    answers_py = applets / "reloadme" / "answers.py"
    edit(answers_py, 'VERSION = "v1"\n', 'VERSION = "v2"\nbroken = (\n')
    wait_until(lambda: f"{answers_py}, line 4" in server.log, WAIT, lambda: server.log)
    assert "SyntaxError" in server.log
    assert "the previous version keeps serving" in server.log
    assert _body(server, "/res/reloadme/version") == b"v1"
    edit(answers_py, "broken = (\n", "")
    wait_until(lambda: _body(server, "/res/reloadme/version") == b"v2", WAIT, lambda: server.log)


def test_import_error_keeps_the_old_version(start_server, applets: Path) -> None:
    """A module that raises on import leaves the old version serving and the log
    names the line that raised."""
    server = _serve(start_server, applets)
    webui = applets / "reloadme" / "webUI.py"
    edit(webui, "import os\n", "import no_such_module_here\nimport os\n")
    wait_until(lambda: f"{webui}, line 1" in server.log, WAIT, lambda: server.log)
    assert "No module named 'no_such_module_here'" in server.log
    assert _body(server, "/res/reloadme/version") == b"v1"


def test_template_edit_shows_up(start_server, applets: Path) -> None:
    """A template edit is rendered by the next request (Django's cached template
    loader is reset)."""
    server = _serve(start_server, applets)
    assert b"template one" in _body(server, "/applets/reloadme/page")
    (applets / "reloadme" / "templates" / "reloadme" / "page.html").write_text("<p>template two</p>\n")
    wait_until(lambda: b"template two" in _body(server, "/applets/reloadme/page"), WAIT, lambda: server.log)


def test_view_edit_is_routed(start_server, applets: Path) -> None:
    """An edit of a Django view is served at the applet's URL by the next requests
    (the package's urls.py and views.py are imported again and mounted)."""
    server = _serve(start_server, applets)
    assert b"template one" in _body(server, "/applets/reloadme/page")
    edit(applets / "reloadme" / "views.py", 'return render(request, "reloadme/page.html", {})',
         'return HttpResponse("view two")')
    edit(applets / "reloadme" / "views.py", "from django.shortcuts import render\n",
         "from django.http import HttpResponse\nfrom django.shortcuts import render\n")
    wait_until(lambda: _body(server, "/applets/reloadme/page") == b"view two", WAIT, lambda: server.log)


def test_editor_files_are_ignored_and_models_kept(start_server, applets: Path) -> None:
    """Editor swap and backup files and bytecode trigger nothing; a reload keeps the
    applet's models module (Django's registry does not see it again)."""
    server = _serve(start_server, applets)
    model_before = _body(server, "/res/reloadme/model")
    package = applets / "reloadme"
    for name in (".answers.py.swp", "answers.py~", ".#answers.py", "4913"):
        (package / name).write_text("x = (\n")
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "junk.cpython-311.pyc").write_bytes(b"junk")
    edit(package / "answers.py", '"v1"', '"v2"')
    wait_until(lambda: _body(server, "/res/reloadme/version") == b"v2", WAIT, lambda: server.log)
    reloads = [line for line in server.log.splitlines() if "reloaded from disk" in line]
    assert len(reloads) == 1 and reloads[0].endswith(": answers.py."), reloads
    assert _body(server, "/res/reloadme/model") == model_before
    assert "already registered" not in server.log


def test_no_gc_freeze_under_reload(start_server, applets: Path) -> None:
    """--reload leaves the heap unfrozen, so old versions of reloaded code are freed."""
    server = _serve(start_server, applets)
    assert _body(server, "/res/reloadme/frozen") == b"0"


def test_models_edit_restarts_without_refusing_a_connection(start_server, applets: Path) -> None:
    """A models.py edit restarts the server process (the supervisor's rolling
    restart) while client threads loop requests: none is refused or fails, and the
    new process serves."""
    server = _serve(start_server, applets)
    old_pid = _body(server, "/res/reloadme/pid")
    pid_url = server.url + "/res/reloadme/pid"
    load = Load(lambda: (lambda a: (a.status, a.body))(request(pid_url, timeout=30)))
    try:
        wait_until(lambda: load.count((200, old_pid)) >= 20, WAIT, "the clients got no answers")
        edit(applets / "reloadme" / "models.py", "# MARK", "# MARK (edited)")
        wait_until(lambda: len({body for _, body in load.answers}) > 1
                   and f"(pid {old_pid.decode()}) exited" in server.log, WAIT, lambda: server.log)
        new_pid = _body(server, "/res/reloadme/pid")
        wait_until(lambda: load.count((200, new_pid)) >= 20, WAIT, "the new process answers nothing")
    finally:
        load.stop()
    assert load.failures() == []
    assert new_pid != old_pid
    assert "models cannot be reloaded in place" in server.log


INITIAL = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel("Note", [
        ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("text", models.CharField(max_length=100))])]
"""

EXTRA = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reloadme", "0001_initial")]
    operations = [migrations.CreateModel("Extra", [
        ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))])]
"""


def test_new_migration_restarts_and_is_applied(start_server, applets: Path) -> None:
    """Migrations added on disk restart the server process, which applies them as
    hanji serve does at start (the first one as fake-initial)."""
    server = _serve(start_server, applets)
    assert json.loads(_body(server, "/res/reloadme/tables")) == ["reloadme_note"]
    migrations = applets / "reloadme" / "migrations"
    migrations.mkdir()
    (migrations / "0001_initial.py").write_text(INITIAL)
    (migrations / "0002_extra.py").write_text(EXTRA)
    (migrations / "__init__.py").write_text("")
    wait_until(lambda: json.loads(_body(server, "/res/reloadme/tables")) == ["reloadme_extra", "reloadme_note"],
               WAIT, lambda: server.log)


def test_reload_without_watchfiles_says_what_to_install(tmp_path: Path) -> None:
    """Without watchfiles, --reload fails at once and says to install hanji[reload]."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "watchfiles.py").write_text("raise ImportError('watchfiles hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "hanji", "serve", "--reload", "--port", "0",
                           "--data", str(tmp_path / "data")], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done
    assert "pip install 'hanji[reload]'" in done.stderr


# -- what a change asks for (pure functions, no server) ---------------------------------


def _plan(tmp_path: Path, *names: str):
    from hanji.server.reload.changes import classify

    root = tmp_path / "applets"
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    return classify([root / n for n in names], {"pkg": root / "pkg"}, applet_dirs=[root],
                    data_dir=root / "pkg" / "data")


def test_editor_files_pycache_and_data_dir_are_ignored(tmp_path: Path) -> None:
    """Swap, backup and probe files, bytecode and the data directory ask for nothing."""
    plan = _plan(tmp_path, "pkg/.views.py.swp", "pkg/.views.py.swx", "pkg/views.py~", "pkg/.#views.py",
                 "pkg/4913", "pkg/views.py___jb_tmp___", "pkg/views.py___jb_old___",
                 "pkg/__pycache__/views.cpython-311.pyc", "pkg/data/db.sqlite3-wal",
                 "pkg/data/x.py")
    assert not plan and plan.nothing == []


def test_changes_are_classified(tmp_path: Path) -> None:
    """Python files reload their package, templates reset the loaders, static files
    ask for nothing, models, migrations, admin and a new package ask for a restart."""
    plan = _plan(tmp_path, "pkg/views.py", "pkg/sub/deep.py", "pkg/templates/pkg/a.html", "pkg/static/x.js")
    assert plan.packages == {"pkg": [tmp_path / "applets/pkg/sub/deep.py", tmp_path / "applets/pkg/views.py"]}
    assert plan.templates == [tmp_path / "applets/pkg/templates/pkg/a.html"]
    assert plan.nothing == [tmp_path / "applets/pkg/static/x.js"] and plan.restart == []
    for name in ("pkg/models.py", "pkg/models/note.py", "pkg/migrations/0002_x.py", "pkg/admin.py"):
        plan = _plan(tmp_path, name)
        assert plan.restart_applets == ["pkg"] and not plan.packages, name
    (tmp_path / "applets" / "newpkg").mkdir()
    plan = _plan(tmp_path, "newpkg/__init__.py")
    assert plan.restart_applets == ["newpkg"]


def test_restart_without_supervisor_says_what_to_do(caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a supervisor, a change that needs a restart is logged with what to do."""
    from hanji.server.reload.changes import Plan
    from hanji.server.reload.reloader import restart_by_supervisor

    monkeypatch.delenv("HANJI_SUPERVISOR_PID", raising=False)
    restart_by_supervisor(Plan(restart=["models.py changed"], restart_applets=["pkg"]))
    assert "models.py changed: this change needs a restart" in caplog.text
    assert "restart hanji serve by hand" in caplog.text


def test_settings_change_asks_for_a_restart(tmp_path: Path) -> None:
    """A change of the project's settings module asks for a restart."""
    from hanji.server.reload.changes import classify

    settings = tmp_path / "mysite" / "settings.py"
    plan = classify([settings], {}, settings_files=[settings])
    assert plan.restart == [f"{settings} (the settings) changed"]
