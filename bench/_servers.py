"""The servers compared: Hanji and the three baselines, each a pinned process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from _harness import BENCH, PYTHON, RAW, ROOT, Cores, Server
from support.net import free_port
from support.server import serve_arguments

APPLETS = BENCH / "applets"
SERVERS = BENCH / "servers"
STATIC_DIR = APPLETS / "benchapp" / "static"

# The same endpoints on every server.
RES_PATH = "/res/benchapp/hello"
DJANGO_PATH = "/applets/benchapp/hello"
STATIC_PATH = "/static/benchapp/10k.txt"
SLEEP_PATH = "/applets/benchapp/sleep?s=2"
CPU_PATH = "/applets/benchapp/cpu?ms=50"

DJANGO_THREADS = 10  # Hanji's default pool size, used by Hanji and the WSGI baseline


def _fresh_dir(name: str) -> Path:
    path = RAW / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _baseline_env(data: Path) -> dict[str, str]:
    path = os.pathsep.join([str(SERVERS), str(APPLETS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, "HANJI_DATA": str(data), "DJANGO_SETTINGS_MODULE": "django_settings"}


def hanji(cores: Cores, tag: str = "hanji", *, patches: str = "", threads: int = DJANGO_THREADS) -> Server:
    """``hanji serve`` with bench/applets, as a user runs it. ``patches`` (comma
    separated names from servers/hanji_patched.py) runs it with proposed fixes applied."""
    data = _fresh_dir(f"data-{tag}")
    ready_file = RAW / f"ready-{tag}.json"
    args = serve_arguments([APPLETS], data, ready_file, ["--django-threads", str(threads)])
    if patches:
        cmd = [PYTHON, str(SERVERS / "hanji_patched.py"), patches, *args]
    else:
        cmd = [PYTHON, "-m", "hanji", *args]
    return Server(tag, cmd, cores=cores, port=None, ready_path=RES_PATH, cwd=data, ready_file=ready_file)


def bare_twisted(cores: Cores) -> Server:
    """A bare twisted.web Site with the same resource and static file."""
    port = free_port()
    return Server("bare-twisted", [PYTHON, str(SERVERS / "bare_twisted.py"), str(port), str(STATIC_DIR)],
                  cores=cores, port=port, ready_path=RES_PATH)


def bare_wsgi(cores: Cores) -> Server:
    """The same Django project behind a bare twisted.web.wsgi.WSGIResource."""
    port = free_port()
    data = _fresh_dir("data-bare-wsgi")
    return Server("bare-wsgi", [PYTHON, str(SERVERS / "bare_wsgi.py"), str(port), str(DJANGO_THREADS)],
                  cores=cores, port=port, ready_path=DJANGO_PATH, env=_baseline_env(data), cwd=data)


def daphne(cores: Cores) -> Server:
    """The same Django project over ASGI under daphne."""
    port = free_port()
    data = _fresh_dir("data-daphne")
    return Server("daphne", [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "django_asgi:application"],
                  cores=cores, port=port, ready_path=DJANGO_PATH, env=_baseline_env(data), cwd=data)


def daphne_available() -> bool:
    try:
        import daphne  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["hanji", "bare_twisted", "bare_wsgi", "daphne", "daphne_available", "ROOT"]
