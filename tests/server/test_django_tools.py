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
