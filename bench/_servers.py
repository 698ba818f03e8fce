"""The servers compared: Hanji and the three baselines, each a pinned process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

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


def hanji(cores: Cores, tag: str = "hanji", *, patches: str = "", threads: int = DJANGO_THREADS,
          extra: Sequence[str] = (), tree: str = "") -> Server:
    """``hanji serve`` with bench/applets, as a user runs it. ``patches`` (comma
    separated names from servers/hanji_patched.py) runs it with proposed fixes applied;
    ``extra`` adds options (``--http twisted``, ``--workers 2``); ``tree`` runs the
    ``hanji`` package of another source tree (servers/hanji_tree.py)."""
    data = _fresh_dir(f"data-{tag}")
    ready_file = RAW / f"ready-{tag}.json"
    args = serve_arguments([APPLETS], data, ready_file, ["--django-threads", str(threads), *extra])
    if tree:
        cmd = [PYTHON, str(SERVERS / "hanji_tree.py"), tree, *args]
    elif patches:
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
    return available("daphne")


def available(module: str) -> bool:
    """Return True if ``module`` (a peer server) can be imported in this venv."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- the peers of issue 14 ------------------------------------------------------------------


def gunicorn(cores: Cores, workers: int = 1, threads: int = DJANGO_THREADS, tag: str = "") -> Server:
    """The same Django project under gunicorn's gthread worker (access log off, its default)."""
    port = free_port()
    name = tag or f"gunicorn-gthread-{workers}x{threads}"
    data = _fresh_dir(f"data-{name}")
    return Server(name, [PYTHON, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
                         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "django_wsgi:application"],
                  cores=cores, port=port, ready_path=DJANGO_PATH, env=_baseline_env(data), cwd=data)


def granian(cores: Cores, workers: int = 1) -> Server:
    """The same Django project under granian's WSGI interface (its defaults otherwise)."""
    port = free_port()
    data = _fresh_dir(f"data-granian-{workers}")
    return Server(f"granian-wsgi-{workers}", [PYTHON, "-m", "granian", "--interface", "wsgi", "--workers", str(workers),
                                              "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                              "django_wsgi:application"],
                  cores=cores, port=port, ready_path=DJANGO_PATH, env=_baseline_env(data), cwd=data)


def uvicorn_django(cores: Cores, workers: int = 1) -> Server:
    """The same Django project over ASGI under uvicorn (uvloop and httptools when installed)."""
    port = free_port()
    data = _fresh_dir(f"data-uvicorn-django-{workers}")
    return Server(f"uvicorn-django-{workers}", [PYTHON, "-m", "uvicorn", "django_asgi:application", "--host", "127.0.0.1",
                                                "--port", str(port), "--workers", str(workers), "--no-access-log",
                                                "--log-level", "warning"],
                  cores=cores, port=port, ready_path=DJANGO_PATH, env=_baseline_env(data), cwd=data)


def aiohttp(cores: Cores) -> Server:
    """The trivial resource on aiohttp's server."""
    port = free_port()
    return Server("aiohttp", [PYTHON, str(SERVERS / "aiohttp_server.py"), str(port)],
                  cores=cores, port=port, ready_path=RES_PATH)


def starlette(cores: Cores) -> Server:
    """The trivial resource as a Starlette app on uvicorn."""
    port = free_port()
    return Server("starlette-uvicorn", [PYTHON, "-m", "uvicorn", "starlette_app:app", "--host", "127.0.0.1",
                                        "--port", str(port), "--no-access-log", "--log-level", "warning"],
                  cores=cores, port=port, ready_path=RES_PATH, env={"PYTHONPATH": str(SERVERS)}, cwd=SERVERS)


def websockets_lib(cores: Cores) -> Server:
    """Figure 5's websocket endpoints on the `websockets` library."""
    port = free_port()
    return Server("websockets-lib", [PYTHON, str(SERVERS / "websockets_server.py"), str(port)],
                  cores=cores, port=port, ready_path=RES_PATH)


# -- what this build of Hanji offers ---------------------------------------------------------

_HELP: list[str] = []


def hanji_options() -> str:
    """Return ``hanji serve --help`` (once per run): which options this build has."""
    if not _HELP:
        import subprocess

        out = subprocess.run([PYTHON, "-m", "hanji", "serve", "--help"], capture_output=True, text=True, timeout=60)
        _HELP.append(out.stdout)
    return _HELP[0]


def hanji_has(option: str) -> bool:
    """Return True if ``hanji serve --help`` lists ``option`` (e.g. "--workers")."""
    import re

    return re.search(rf"(^|[\s\[]){re.escape(option)}\b", hanji_options(), re.M) is not None


__all__ = ["hanji", "bare_twisted", "bare_wsgi", "daphne", "daphne_available", "ROOT"]
