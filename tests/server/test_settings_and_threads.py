"""Settings extension, applet directories from the environment, thread checks, exports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.paths import APPLETS


def test_hanji_settings_module_extends_defaults(tmp_path):
    """A module named in HANJI_SETTINGS extends Hanji's settings (SQLite default kept)."""
    (tmp_path / "my_settings.py").write_text(
        "from hanji.django.settings import *\nHANJI_TEST_FLAG = 'extended'\n"
    )
    env = dict(os.environ, HANJI_SETTINGS="my_settings", PYTHONPATH=str(tmp_path),
               HANJI_APPLETS=str(APPLETS), HANJI_DATA=str(tmp_path / "data"))
    code = ("from django.conf import settings; print(settings.HANJI_TEST_FLAG, "
            "settings.DATABASES['default']['ENGINE'], 'notes' in settings.INSTALLED_APPS)")
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", "shell", "--no-imports", "-c", code],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["extended", "django.db.backends.sqlite3", "True"]
    assert (tmp_path / "data").is_dir()


def test_database_url_switches_database(tmp_path):
    """DATABASE_URL replaces the embedded SQLite database."""
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    env = dict(os.environ, DATABASE_URL=url, HANJI_DATA=str(tmp_path / "data"))
    code = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    out = subprocess.run([sys.executable, "-m", "hanji", "manage", "shell", "--no-imports", "-c", code],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "other.sqlite3")


def test_applet_dirs_from_hanji_applets(tmp_path, monkeypatch):
    """HANJI_APPLETS lists applet directories separated by os.pathsep."""
    from hanji.django.setup import applet_dirs_from_env, discover

    other = tmp_path / "more"
    (other / "extra_applet").mkdir(parents=True)
    (other / "extra_applet" / "__init__.py").write_text("")
    monkeypatch.setenv("HANJI_APPLETS", os.pathsep.join([str(APPLETS), str(other)]))
    dirs = applet_dirs_from_env()
    assert dirs == [APPLETS.resolve(), other.resolve()]
    found = discover(dirs)
    assert {"hello_world", "echo", "notes", "extra_applet"} <= set(found)
    assert applet_dirs_from_env([str(other)]) == [other.resolve()]  # --applets wins


def test_reactor_only_functions_refuse_other_threads_in_debug():
    """In debug mode a reactor-thread function called from another thread raises HanjiThreadError."""
    from hanji import _threads
    from hanji._exceptions import HanjiThreadError
    from hanji.server.registry import Registry

    _threads.set_debug(True)
    try:
        with pytest.raises(HanjiThreadError, match="must run on the reactor thread"):
            Registry().remove("x")
    finally:
        _threads.set_debug(False)


def test_public_names():
    """hanji exports exactly its documented public names, sorted."""
    import hanji
    from hanji.core import applet, utils

    assert hanji.__all__ == sorted(hanji.__all__)
    assert hanji.__all__ == [
        "AppletActivationError", "AppletNotFound", "HTTPStatusError", "HanjiError", "HanjiThreadError",
        "ServerNotRunning", "WebSocketClosed", "WebSocketHandshakeError", "activate", "aget", "apost", "applets", "arequest", "deactivate", "endpoint", "errors", "export", "get",
        "load_ipython_extension", "migrate", "post", "publish", "request", "routes", "show", "status",
        "subscribe", "unload_ipython_extension", "url", "ws",
    ]
    assert not utils.TwAppletResource.isLeaf
