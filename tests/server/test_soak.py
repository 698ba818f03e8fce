"""A brief run of the soak script (bench/soak.py) in the suite: zero errors.

Ten seconds cannot show a slow leak (the one soak.py found grew ~1.5 MB a minute, under
its 10 MB bar): flat memory is for the 120-300 s runs of bench/README.md.
"""

from __future__ import annotations

import subprocess
import sys

from support.paths import ROOT


def test_brief_soak_has_zero_errors() -> None:
    """Ten seconds of mixed /res, Django, static and websocket load on a real server
    end with zero errors (exit code 0; the memory check runs too, but is loose here)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--seconds", "10"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "soak: errors: 0" in out, out
    assert "soak: PASS: zero errors, flat memory" in out, out
    assert "ws echo" in out and "django POST" in out and "static GET" in out, out
