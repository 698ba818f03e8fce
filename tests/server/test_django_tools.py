"""Django's own tools see the applets' URLs without a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.paths import APPLETS


def test_django_test_runner_runs_an_applets_own_tests(tmp_path: Path) -> None:
    """`hanji manage test notes` runs the notes applet's tests.py, whose test Client
    reaches the applet's URLs and whose reverse() finds its named routes."""
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", "--applets", str(APPLETS),
                          "--data", str(tmp_path / "data"), "test", "notes"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=dict(os.environ, HANJI_ECHO_PORT="0"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Ran 3 tests" in out.stderr and "\nOK" in out.stderr


def test_a_project_settings_module_imports_from_the_current_directory(tmp_path: Path) -> None:
    """HANJI_SETTINGS=mysite.settings is found in the current directory, as manage.py finds it,
    and a ROOT_URLCONF that includes Hanji's URLs sees the applets' URLs."""
    site = tmp_path / "mysite"
    site.mkdir()
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text("from hanji.django.settings import *  # noqa\n"
                                      "ROOT_URLCONF = 'mysite.urls'\nMYSITE = 'mine'\n")
    (site / "urls.py").write_text("from django.urls import include, path\n"
                                  "urlpatterns = [path('site/', include('hanji.django.urls'))]\n")
    code = ("from django.conf import settings; from django.urls import reverse; "
            "print(settings.MYSITE, reverse('notes:list'))")
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", "--applets", str(APPLETS),
                          "--data", str(tmp_path / "data"), "shell", "-c", code],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=dict(os.environ, HANJI_SETTINGS="mysite.settings", HANJI_ECHO_PORT="0"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].split() == ["mine", "/site/applets/notes/"]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_from_no_migrations_to_migrations_and_a_broken_one(tmp_path: Path, start_server: Any) -> None:
    """An applet whose tables were made without migrations starts after makemigrations
    (its initial migration is faked, as --fake-initial does); an applet whose migration
    fails is marked failed, named in the log with the fix, and the others serve."""
    applets, data = tmp_path / "applets", tmp_path / "data"
    _write(applets / "inventory" / "__init__.py", "from hanji.core import applet as _applet\napplet = _applet.Applet()\n")
    _write(applets / "inventory" / "models.py", "from django.db import models\n\n\n"
                                                "class Item(models.Model):\n    name = models.CharField(max_length=100)\n")
    manage = [sys.executable, "-m", "hanji", "manage", "--applets", str(applets), "--data", str(data)]
    env = dict(os.environ, HANJI_ECHO_PORT="0")
    first = start_server([applets], args=["--data", str(data)])  # tables made without migrations
    first.stop()
    made = subprocess.run([*manage, "makemigrations", "inventory"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert made.returncode == 0 and (applets / "inventory" / "migrations" / "0001_initial.py").exists(), made.stderr
    _write(applets / "brokenmig" / "__init__.py", "from hanji.core import applet as _applet\napplet = _applet.Applet()\n")
    _write(applets / "brokenmig" / "migrations" / "__init__.py", "")
    _write(applets / "brokenmig" / "migrations" / "0001_initial.py",
           "from django.db import migrations\n\n\ndef fail(apps, schema_editor):\n"
           "    raise RuntimeError('this migration is broken')\n\n\n"
           "class Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n"
           "    operations = [migrations.RunPython(fail)]\n")
    server = start_server([applets], args=["--data", str(data)])
    log = server.log
    assert "Applet 'inventory' active" in log
    assert "Applet 'brokenmig': its migrations failed; the others go on" in log
    assert "hanji manage migrate brokenmig" in log and "already exists" not in log
    assert "1 active, 1 failed" in log


def test_other_apps_static_files_are_served_and_collected_in_the_same_layout(server: Any, tmp_path: Path) -> None:
    """The admin's CSS is served at /static/admin/…, applets' files at /static/<applet_id>/…,
    and collectstatic writes that same layout into the data dir without collisions."""
    import django

    css = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "css" / "base.css"
    answer = server.get("/static/admin/css/base.css")
    assert answer.status == 200 and answer.body == css.read_bytes()
    assert answer.headers.get("content-type", "").startswith("text/css")
    assert server.get("/static/hello_world/icon.png").status == 200
    data = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", "--applets", str(APPLETS), "--data", str(data),
                          "collectstatic", "--noinput"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=dict(os.environ, HANJI_ECHO_PORT="0"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Found another file" not in out.stdout + out.stderr
    collected = data / "static"
    assert (collected / "admin" / "css" / "base.css").read_bytes() == css.read_bytes()
    assert (collected / "hello_world" / "icon.png").read_bytes() == (APPLETS / "hello_world" / "static" / "icon.png").read_bytes()
    assert not (collected / "icon.png").exists()


# The superuser the admin and user tests log in as.
ADA = {"DJANGO_SUPERUSER_USERNAME": "ada", "DJANGO_SUPERUSER_PASSWORD": "correct horse battery",
       "DJANGO_SUPERUSER_EMAIL": "ada@example.com"}


def _manage(tmp_path: Path, data: Path, *args: str, applets: tuple[Path, ...] = (APPLETS,)) -> str:
    """Run `hanji manage ARGS` on ``data`` (with Ada's superuser settings in the
    environment); fail on an error; return its stdout."""
    dirs = [arg for d in applets for arg in ("--applets", str(d))]
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", *dirs, "--data", str(data), *args],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=dict(os.environ, HANJI_ECHO_PORT="0", **ADA))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _log_in(server: Any) -> tuple[Any, Any]:
    """Log Ada in through the admin's login form, with Django's CSRF token, as a browser
    does; return the cookie-keeping opener and its cookie jar."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = browser.open(server.url + "/admin/login/?next=/admin/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": ADA["DJANGO_SUPERUSER_USERNAME"],
                                   "password": ADA["DJANGO_SUPERUSER_PASSWORD"], "next": "/admin/"}).encode()
    landed = browser.open(urllib.request.Request(server.url + "/admin/login/?next=/admin/", data=form), timeout=30)
    assert landed.geturl().endswith("/admin/") and "Site administration" in landed.read().decode()
    return browser, jar


def test_the_admin_works_with_a_superuser_and_django_s_csrf_token(tmp_path: Path, start_server: Any) -> None:
    """`hanji manage createsuperuser` makes a user who logs in to /admin/ through a real
    HTTP client with Django's CSRF token."""
    data = tmp_path / "data"
    server = start_server(args=["--data", str(data)])
    _manage(tmp_path, data, "createsuperuser", "--noinput")
    browser, _ = _log_in(server)
    assert 'href="/admin/">Django admin</a>' in browser.open(server.url + "/", timeout=30).read().decode()
    notes = browser.open(server.url + "/admin/notes/note/", timeout=30).read().decode()
    assert "Select note to change" in notes  # the notes applet's admin.py, autodiscovered
    assert "Django admin" not in server.get("/").text  # an anonymous visitor sees no admin link


def test_hanji_s_credential_never_reaches_django_and_others_pass_untouched(start_server: Any) -> None:
    """Hanji's token travels in X-Hanji-Token and is removed before Django (also when sent
    the older way, as Authorization: token …); an Authorization that is not Hanji's (a
    DRF token, HTTP Basic) reaches the view untouched on a server with a token."""
    import json as _json

    server = start_server(env={"HANJI_TOKEN": "the-hanji-token"})
    assert server.token == "the-hanji-token"

    def seen(headers: dict[str, str]) -> dict[str, Any]:
        answer = server.get("/applets/slowpeer/headers/", headers=headers)
        assert answer.status == 200, answer.text
        return _json.loads(answer.body)  # type: ignore[no-any-return]

    assert seen({"X-Hanji-Token": "the-hanji-token"}) == {"authorization": None, "x_hanji_token": None}
    assert seen({"Authorization": "token the-hanji-token"}) == {"authorization": None, "x_hanji_token": None}
    drf = seen({"X-Hanji-Token": "the-hanji-token", "Authorization": "Token 9944b09199c62bcf9418ad846dd0e4bb"})
    assert drf == {"authorization": "Token 9944b09199c62bcf9418ad846dd0e4bb", "x_hanji_token": None}
    basic = seen({"X-Hanji-Token": "the-hanji-token", "Authorization": "Basic YWRhOnNlY3JldA=="})
    assert basic["authorization"] == "Basic YWRhOnNlY3JldA=="
    assert server.get("/applets/slowpeer/headers/", headers={"Authorization": "Token other"}).status == 403


def test_django_s_user_in_twisted_resources_and_websockets(tmp_path: Path, start_server: Any) -> None:
    """A user logged in through the admin's login page is request.django_user in a
    login_required resource and self.user on a login_required websocket; anonymous
    visitors get 403 (or the login page's redirect), without blocking the reactor."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect as ws_connect

    from support.paths import TEST_APPLETS

    data = tmp_path / "data"
    server = start_server(args=["--data", str(data)])
    _manage(tmp_path, data, "createsuperuser", "--noinput", applets=(APPLETS, TEST_APPLETS))
    browser, jar = _log_in(server)

    assert json.loads(browser.open(server.url + "/res/djuser/me", timeout=30).read()) == {"user": "ada"}
    assert json.loads(browser.open(server.url + "/res/djuser/staff", timeout=30).read()) == {"staff": "ada"}
    assert json.loads(browser.open(server.url + "/res/djuser/who", timeout=30).read()) == {"anonymous": False}
    assert json.loads(server.get("/res/djuser/who").body) == {"anonymous": True}
    anonymous = server.get("/res/djuser/me")
    assert anonymous.status == 403 and "needs a logged-in user" in anonymous.text
    redirect = _status_and_location(server.url + "/res/djuser/needs_login")
    assert redirect == (302, "/admin/login/?next=/res/djuser/needs_login")

    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    ws_url = server.url.replace("http://", "ws://") + "/ws/djuser/hello"
    with ws_connect(ws_url, additional_headers={"Cookie": cookie}, open_timeout=30) as ws:
        assert ws.recv(timeout=30) == "hello ada"
    try:
        ws_connect(ws_url, open_timeout=30)
        raise AssertionError("an anonymous websocket was accepted")
    except InvalidStatus as exc:
        assert exc.response.status_code == 403


def _status_and_location(url: str) -> tuple[int, str | None]:
    """Return the status and Location of a GET, not following a redirect."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("location")
    finally:
        connection.close()


def test_a_drf_applet_with_token_and_session_auth_beside_hanji_s_token(tmp_path: Path, start_server: Any) -> None:
    """The tasks example (Django REST framework) on a server with a Hanji token: reads are
    open, a write needs DRF's own token (sent as Authorization: Token …, beside
    X-Hanji-Token), and the browsable API is styled with DRF's static files."""
    data = tmp_path / "data"
    server = start_server(args=["--data", str(data)], env={"HANJI_TOKEN": "the-hanji-token"})
    _manage(tmp_path, data, "createsuperuser", "--noinput")
    drf_token = _manage(tmp_path, data, "drf_create_token", "ada").split()[2]  # "Generated token <key> for user ada"
    hanji = {"X-Hanji-Token": "the-hanji-token"}
    api = "/applets/tasks/api/tasks/"

    assert server.get(api, headers=hanji).status == 200
    refused = server.request("POST", api, data=json.dumps({"title": "Write docs"}).encode(),
                             headers={**hanji, "Content-Type": "application/json"})
    assert refused.status in (401, 403) and "credentials were not provided" in refused.text
    created = server.request("POST", api, data=json.dumps({"title": "Write docs"}).encode(),
                             headers={**hanji, "Content-Type": "application/json",
                                      "Authorization": f"Token {drf_token}"})
    assert created.status == 201, created.text
    assert json.loads(created.body) == {"id": 1, "title": "Write docs", "done": False, "owner": "ada"}
    assert json.loads(server.get(api, headers=hanji).body)[0]["title"] == "Write docs"

    page = server.get(api, headers={**hanji, "Accept": "text/html"})
    assert page.status == 200 and "/static/rest_framework/css/bootstrap.min.css" in page.text
    css = server.get("/static/rest_framework/css/bootstrap.min.css", headers=hanji)
    assert css.status == 200 and css.headers.get("content-type", "").startswith("text/css")
