"""Django's own tools see the applets' URLs without a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
