"""The limit: Django's own cost for the trivial view, ``WSGIHandler`` called in a loop.

    python bench/_django_loop.py [REQUESTS]     # prints one JSON line

The same settings as the bench's Django servers (``servers/django_settings.py``: Hanji's
settings and middleware, benchapp's URLconf), one thread, no server: each request is a
fresh WSGI environ of ``GET /applets/benchapp/hello`` (what twisted.web.wsgi builds for
wrk's request), the response iterated and closed. No socket, no HTTP parsing, no thread
hand-off: what remains is Django's cost, the bar every server's Django figure is divided
by. Like ``hanji serve``, the start-up heap is frozen (``gc.freeze()``) before timing.
``measure()`` runs it in a subprocess pinned to the server core (harness process).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PATH = "/applets/benchapp/hello"
WARMUP = 3000


def _environ(port: int) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": PATH, "QUERY_STRING": "",
        "CONTENT_TYPE": "", "CONTENT_LENGTH": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "HTTP_HOST": f"127.0.0.1:{port}", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _loop(requests: int) -> dict[str, Any]:
    """Run in this process (the subprocess of ``measure``): time ``requests`` calls."""
    import gc

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    base = _environ(8000)
    statuses: dict[str, int] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses[status] = statuses.get(status, 0) + 1
        return lambda data: None

    def one() -> None:
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(b"")
        result = handler(env, start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()

    for _ in range(WARMUP):
        one()
    gc.collect()
    gc.freeze()
    statuses.clear()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(requests):
        one()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"requests": requests, "cpu_seconds": cpu, "wall_seconds": wall, "us_per_request": 1e6 * cpu / requests,
            "per_cpu_second": requests / cpu, "statuses": statuses}


def measure(cores: Any, requests: int = 20000, data: Path | None = None) -> dict[str, Any]:
    """Run the loop pinned to the server core; return its JSON result (harness process)."""
    from _harness import RAW

    data = data or RAW / "data-django-loop"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HANJI_DATA=str(data), DJANGO_SETTINGS_MODULE="django_settings",
               PYTHONPATH=os.pathsep.join([str(HERE / "servers"), str(HERE / "applets"),
                                           os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [*cores.prefix(cores.server), sys.executable, str(Path(__file__).resolve()), str(requests)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=data, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"the WSGIHandler loop failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line)
    if set(result["statuses"]) != {"200 OK"}:
        raise RuntimeError(f"the WSGIHandler loop did not answer 200 OK: {result['statuses']}")
    return result


def describe(r: dict[str, Any]) -> str:
    return (f"### WSGIHandler in a loop (Django's own cost)\n\n{r['requests']} requests: "
            f"**{r['us_per_request']:.0f} µs of CPU per request**, {r['per_cpu_second']:.0f} requests per CPU-second "
            f"(wall {1e6 * r['wall_seconds'] / r['requests']:.0f} µs per request).\n")


if __name__ == "__main__":
    print(json.dumps(_loop(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)), flush=True)
