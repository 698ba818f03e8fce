"""%load_ext hanji, %hanji and %unload_ext hanji in a real kernel (issue 3, items 1, 8, 9)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.kernels import Kernel
from support.net import port_is_free
from support.paths import APPLETS


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kernel, Any]]:
    """A kernel and the output of its %load_ext hanji cell."""
    k = Kernel(tmp_path_factory.mktemp("ext"))
    result = k.ok("%load_ext hanji\nimport hanji")
    yield k, result
    k.shutdown()


def test_load_shows_one_line_banner_with_link_and_time(loaded: tuple[Kernel, Any]) -> None:
    """%load_ext hanji shows a one-line banner with a clickable link, the applets and the time it took."""
    kernel, result = loaded
    (plain,) = result.data("text/plain")
    assert "\n" not in plain.strip()
    match = re.search(r"Hanji \S+ serves (http://127\.0\.0\.1:\d+/) · (\d+) applets active · started in \d+\.\d\d s", plain)
    assert match, plain
    packages = [d for d in APPLETS.iterdir() if (d / "__init__.py").is_file() and not d.name.startswith("_")]
    assert int(match.group(2)) == len(packages) and "failed" not in plain
    (html,) = result.data("text/html")
    assert re.search(f'<a href="{re.escape(match.group(1))}' + r'\?ticket=[\w-]+" data-hanji-url=', html), html
    assert kernel.value("hanji.url()") == match.group(1)


def test_second_load_is_a_no_op_with_a_message(loaded: tuple[Kernel, Any]) -> None:
    """Loading the extension again changes nothing and says so."""
    kernel, _ = loaded
    before = kernel.value("hanji.url()")
    again = kernel.ok("%load_ext hanji")
    assert "already loaded" in again.text
    direct = kernel.ok("hanji.load_ipython_extension(get_ipython())")
    assert f"Hanji is already loaded: {before}" in direct.text
    assert kernel.value("hanji.url()") == before


def test_reactor_runs_in_a_thread_named_hanjireactor(loaded: tuple[Kernel, Any]) -> None:
    """The reactor runs in crochet's thread, renamed HanjiReactor, and Django workers are HanjiDjango-N."""
    kernel, _ = loaded
    names = kernel.value("[t.name for t in __import__('threading').enumerate()]")
    assert "HanjiReactor" in names and "CrochetReactor" not in names
    assert any(n.startswith("HanjiDjango-") for n in names)
    assert kernel.value("hanji.status().reactor_alive") is True


def test_status_magic_shows_reactor_url_and_applets(loaded: tuple[Kernel, Any]) -> None:
    """%hanji status names the reactor thread, the URL and each applet with its version and last error."""
    kernel, _ = loaded
    text = kernel.ok("%hanji status").text
    url = kernel.value("hanji.url()")
    assert f"Hanji: running at {url}" in text
    assert "reactor thread HanjiReactor: alive" in text
    assert re.search(r"hello_world\s+active\s+v1\s+hello_world\s+/res/hello_world/path_to_my_resource\s+-", text)


def test_routes_magic_marks_twisted_django_overlaps(loaded: tuple[Kernel, Any]) -> None:
    """%hanji routes lists Twisted and Django routes and marks a URL both define."""
    kernel, _ = loaded
    kernel.ok("""
        from django.http import HttpResponse
        from django.urls import path
        from hanji.core.applet import Applet, WebUI
        from hanji.core.utils import TwAppletResource

        class Twin(TwAppletResource):
            path = "twin"
            def render_GET(self, request):
                return "twisted"

        class Overlap(Applet):
            id = "overlap"
            url_prefix = ""

        hanji.activate(Overlap, web=type("W", (WebUI,), {"twisted_dynamic_resources": [Twin]}),
                       urls=[path("res/overlap/twin", lambda r: HttpResponse("django"))])
    """)
    text = kernel.ok("%hanji routes").text
    assert re.search(r"/res/overlap/twin\s+twisted\s+overlap\s+resource Twin\s+also matched by Django: Twisted serves it", text)
    assert re.search(r"/res/overlap/twin\s+django\s+overlap", text)
    assert "/applets/notes/" in text
    assert kernel.value("hanji.get('/res/overlap/twin').text") == "twisted"
    kernel.ok("hanji.deactivate('overlap')")


def test_url_and_applets_magics(loaded: tuple[Kernel, Any]) -> None:
    """%hanji url prints the site's or a resource's URL and %hanji applets lists the applets."""
    kernel, _ = loaded
    base = kernel.value("hanji.url()")
    assert kernel.ok("%hanji url").stdout.strip() == base
    assert kernel.ok("%hanji url echo info").stdout.strip() == base + "res/echo/info"
    assert re.search(r"notes\s+active\s+v1\s+notes\s+/res/notes/list", kernel.ok("%hanji applets").text)


@pytest.mark.parametrize("line, message", [
    ("%hanji bogus", "invalid choice: 'bogus'"),
    ("%hanji status extra", "%hanji status takes no applet id"),
    ("hanji.get('no-slash')", "must start with '/'"),
])
def test_user_mistakes_are_one_line_usage_errors(loaded: tuple[Kernel, Any], line: str, message: str) -> None:
    """Mistakes in %hanji or in the API raise a UsageError shown as one clear line."""
    kernel, _ = loaded
    result = kernel.run(line)
    assert result.error["ename"] == "UsageError"
    assert len(result.error["traceback"]) == 1 and message in result.error_text


def test_stop_and_start_magics_keep_the_url(loaded: tuple[Kernel, Any]) -> None:
    """%hanji stop frees the port at once and %hanji start listens again on the same URL."""
    kernel, _ = loaded
    url = kernel.value("hanji.url()")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    assert "port %d is free" % port in kernel.ok("%hanji stop").text
    assert port_is_free(port)
    result = kernel.run("hanji.get('/')")
    assert result.error["ename"] == "NotLoaded" and len(result.error["traceback"]) == 1
    assert "Hanji: stopped" in kernel.ok("%hanji status").text
    assert "serves " + url in kernel.ok("%hanji start").text
    assert kernel.value("hanji.get('/res/echo/info').status") == 200


def test_unload_frees_port_and_load_listens_again(loaded: tuple[Kernel, Any]) -> None:
    """%unload_ext hanji frees the port and deactivates applets; %load_ext hanji again serves the same URL."""
    kernel, _ = loaded
    kernel.ok("""
        @hanji.endpoint("ping")
        def ping():
            return "pong"
    """)
    url = kernel.value("hanji.url()")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    result = kernel.ok("%unload_ext hanji")
    assert f"port {port} is free" in result.text
    assert port_is_free(port)
    assert kernel.value("hanji.status().running") is False
    assert "%hanji` not found" in kernel.run("%hanji status").text
    again = kernel.ok("%load_ext hanji")
    assert f"serves {url}" in again.text
    assert "HanjiReactor" in kernel.value("[t.name for t in __import__('threading').enumerate()]")
    assert kernel.value("hanji.get('/res/echo/info').status") == 200
    assert kernel.value("hanji.get(('notebook', 'ping')).status") == 404  # notebook applets went with the unload


def test_taken_port_falls_back_to_the_next_free_one(new_kernel: Any) -> None:
    """When HANJI_PORT is taken, Hanji listens on the next free port and the banner says so."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        kernel = new_kernel(env={"HANJI_PORT": str(taken)}, applets=None)
        result = kernel.ok("%load_ext hanji\nimport hanji")
        got = int(kernel.value("hanji.url()").rstrip("/").rsplit(":", 1)[1])
    assert got != taken and taken < got < taken + 50
    # Another process on this shared machine may hold a port just above ours; the banner names
    # every taken port, starting with the one we hold.
    assert re.search(rf"\bports? {taken}(, \d+)* (was|were) taken, so it listens on {got}\b", result.text)
    assert "0 applets active" in result.text


def test_every_taken_port_is_named(new_kernel: Any) -> None:
    """When several ports in a row are taken, the banner and the log name each one."""
    from support.net import port_is_free

    for _ in range(50):  # two consecutive ports to hold
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first < 65000 and port_is_free(first) and port_is_free(first + 1):
            break
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", first))
        b.bind(("127.0.0.1", first + 1))
        a.listen(1)
        b.listen(1)
        kernel = new_kernel(env={"HANJI_PORT": str(first)}, applets=None)
        result = kernel.ok("%load_ext hanji\nimport hanji")
        got = int(kernel.value("hanji.url()").rstrip("/").rsplit(":", 1)[1])
    assert f"ports {first}, {first + 1} were taken, so it listens on {got}" in result.text
    log = kernel.value("open(str(__import__('hanji.notebook.session').notebook.session.get_session().log_path)).read()")
    assert f"Ports {first}, {first + 1} are taken; Hanji listens on {got} instead." in log
    pid = kernel.value("__import__('os').getpid()")
    assert f" {pid} WARNING hanji.server" in log  # the kernel's process id on its lines


def test_data_dir_holds_database_and_log(loaded: tuple[Kernel, Any]) -> None:
    """The kernel's Hanji keeps its SQLite database and its log in HANJI_DATA, not in the cells."""
    kernel, _ = loaded
    data = Path(kernel.data)
    assert (data / "db.sqlite3").is_file()
    assert "Hanji serves" in (data / "hanji.log").read_text()


def test_reload_ext_restarts_on_the_same_url(loaded: tuple[Kernel, Any]) -> None:
    """%reload_ext hanji stops and starts Hanji again on the same URL, with the packaged applets."""
    kernel, _ = loaded
    url = kernel.value("hanji.url()")
    result = kernel.ok("%reload_ext hanji")
    assert "Hanji unloaded" in result.text and f"serves {url}" in result.text
    assert kernel.value("hanji.get(('hello_world', 'path_to_my_resource')).status") == 405


def test_a_notebook_beside_the_applets_folder_finds_them(tmp_path: Path) -> None:
    """A kernel started in notebooks/ next to applets/ (the tutorials' layout) finds the
    applets without HANJI_APPLETS, and logs where from."""
    from support.kernels import Kernel

    (tmp_path / "notebooks").mkdir()
    applet = tmp_path / "applets" / "beside"
    applet.mkdir(parents=True)
    (applet / "__init__.py").write_text(
        "from hanji.core import applet as _applet\n"
        "from hanji.core.utils import TwAppletResource\n\n"
        "class Here(TwAppletResource):\n    path = 'here'\n"
        "    def render_GET(self, request):\n        return 'found'\n\n"
        "class WebUI(_applet.WebUI):\n    twisted_dynamic_resources = [Here]\n\n"
        "applet = _applet.Applet()\n")
    kernel = Kernel(tmp_path, env={"HANJI_APPLETS": ""}, cwd=tmp_path / "notebooks")
    try:
        result = kernel.ok("%load_ext hanji\nimport hanji")
        assert "1 applet active" in result.text
        assert kernel.value("hanji.get(('beside', 'here')).text") == "found"
    finally:
        kernel.shutdown()
