"""Figure 6: Hanji in a real Jupyter kernel, driven through jupyter_client.

Measured inside the kernel (``time.perf_counter`` around the call, in the cell) so
that the figures are what the notebook user waits for, without the messaging
round trip of jupyter_client; the wall time of the cell seen from here is kept too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import _servers as S
from _harness import RAW, Cores, fmt, median
from support.net import free_port
from _report import Report

KERNELS = 3  # fresh kernels, each timing one %load_ext
SWAPS = 20
GETS = 200

LOAD_CELL = """\
import time as _bench_time
_bench_t0 = _bench_time.perf_counter()
get_ipython().run_line_magic("load_ext", "hanji")
_bench_load = _bench_time.perf_counter() - _bench_t0
import json as _bench_json
print("BENCH " + _bench_json.dumps({"load_s": _bench_load}))
"""

RELOAD_CELL = """\
_bench_t0 = _bench_time.perf_counter()
get_ipython().run_line_magic("load_ext", "hanji")
print("BENCH " + _bench_json.dumps({"second_load_s": _bench_time.perf_counter() - _bench_t0}))
"""

SWAP_CELL = """\
import hanji
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource


def _bench_define(version):
    # What re-running a changed cell does: new classes, same applet id and paths.
    class BenchSwap(Applet):
        id = "benchswap"

    class Version(TwAppletResource):
        path = "version"

        def render_GET(self, request):
            return version.encode()

    class BenchSwapUI(WebUI):
        twisted_dynamic_resources = [Version]

    return BenchSwap, BenchSwapUI


hanji.activate(*_bench_define("v0"))  # first activation, not timed
_bench_swaps = []
for _i in range(1, %(swaps)d + 1):
    _bench_classes = _bench_define(f"v{_i}")
    _bench_t0 = _bench_time.perf_counter()
    hanji.activate(_bench_classes[0], web=_bench_classes[1])
    _bench_swaps.append(_bench_time.perf_counter() - _bench_t0)
_bench_answer = hanji.get("/res/benchswap/version").text
print("BENCH " + _bench_json.dumps({"swap_s": _bench_swaps, "answer": _bench_answer}))
"""

GET_CELL = """\
import urllib.request as _bench_urllib

from hanji.notebook.session import get_session as _bench_session

# The kernel's server requires its access token (hanji.get sends it by itself).
_bench_url = _bench_urllib.Request(hanji.url("benchapp", "hello"),
                                   headers={"Authorization": "token " + _bench_session().token})
for _i in range(20):
    hanji.get("/res/benchapp/hello")
    _bench_urllib.urlopen(_bench_url).read()
_bench_get, _bench_plain = [], []
for _i in range(%(gets)d):
    _bench_t0 = _bench_time.perf_counter()
    _r = hanji.get("/res/benchapp/hello")
    _bench_get.append(_bench_time.perf_counter() - _bench_t0)
    assert _r.status == 200, _r.status
    _bench_t0 = _bench_time.perf_counter()
    with _bench_urllib.urlopen(_bench_url) as _u:
        _u.read()
    _bench_plain.append(_bench_time.perf_counter() - _bench_t0)
print("BENCH " + _bench_json.dumps({"get_s": _bench_get, "urllib_s": _bench_plain}))
"""


class Kernel:
    """One ipykernel started by jupyter_client, pinned (all threads) to the server core."""

    def __init__(self, cores: Cores, env: dict[str, str], cwd: str) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        t0 = time.perf_counter()
        self._stderr = open(os.path.join(cwd, "kernel.log"), "wb")
        self.km.start_kernel(env=env, cwd=cwd, stdout=self._stderr, stderr=self._stderr)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.start_seconds = time.perf_counter() - t0
        self.pid = self.km.provisioner.process.pid if self.km.provisioner else None
        if cores.pinned and self.pid and shutil.which("taskset"):
            # -a: every thread the kernel has now; threads created later inherit it.
            subprocess.run(["taskset", "-a", "-p", "-c", str(cores.server), str(self.pid)],
                           capture_output=True, timeout=10)

    def run(self, code: str, timeout: float = 120.0) -> tuple[dict[str, Any], float, str]:
        """Execute ``code``; return the merged BENCH json, the cell's wall time, all output."""
        out: list[str] = []
        data: dict[str, Any] = {}

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                out.append("\n".join(content.get("traceback", [])) + "\n")
            elif kind in ("display_data", "execute_result"):
                out.append(str(content.get("data", {}).get("text/plain", "")) + "\n")

        t0 = time.perf_counter()
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
        wall = time.perf_counter() - t0
        text = "".join(out)
        for line in text.splitlines():
            if line.startswith("BENCH "):
                data.update(json.loads(line[6:]))
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {text[-2000:]}")
        return data, wall, text

    def stop(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        except Exception:
            self.km.shutdown_kernel(now=True)
        self._stderr.close()


def figure_6(report: Report, cores: Cores, args: Any) -> None:
    try:
        import jupyter_client  # noqa: F401
        import hanji.notebook.extension  # noqa: F401
    except ImportError as exc:
        report.row("6", "notebook", "not available", "", "", "", "not measured")
        report.note(f"figure 6: {exc}")
        return
    log = RAW / "notebook.txt"
    loads, load_walls, banners, starts, second = [], [], [], [], []
    swaps: list[float] = []
    gets: list[float] = []
    plain: list[float] = []
    answer = ""
    with open(log, "w") as f:
        for k in range(KERNELS):
            data_dir = RAW / f"data-kernel-{k + 1}"
            shutil.rmtree(data_dir, ignore_errors=True)
            data_dir.mkdir(parents=True)
            env = dict(os.environ, HANJI_DATA=str(data_dir), HANJI_PORT=str(free_port()),
                       HANJI_APPLETS=str(S.APPLETS), PYTHONUNBUFFERED="1")
            kernel = Kernel(cores, env, str(data_dir))
            try:
                starts.append(kernel.start_seconds)
                kernel.run("1 + 1")  # a warm kernel: started and answering cells
                data, wall, text = kernel.run(LOAD_CELL)
                f.write(f"--- kernel {k + 1}: %load_ext hanji\n{text}\n")
                loads.append(data["load_s"])
                load_walls.append(wall)
                banners.append(text.strip().splitlines()[0][:200] if text.strip() else "")
                data, _, text = kernel.run(RELOAD_CELL)
                f.write(f"--- kernel {k + 1}: second %load_ext hanji\n{text}\n")
                second.append(data["second_load_s"])
                if k == 0:
                    data, _, text = kernel.run(SWAP_CELL % {"swaps": SWAPS})
                    f.write(f"--- hot swaps\n{text}\n")
                    swaps, answer = data["swap_s"], data["answer"]
                    data, _, text = kernel.run(GET_CELL % {"gets": GETS})
                    f.write(f"--- hanji.get\n{text[:2000]}\n")
                    gets, plain = data["get_s"], data["urllib_s"]
            finally:
                kernel.stop()

    def pct(values: list[float], p: float) -> float | None:
        if not values:
            return None
        v = sorted(values)
        return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]

    ms = 1000.0
    report.row("6", f"`%load_ext hanji` in a warm kernel (s, median of {KERNELS} kernels)",
               f"{fmt(median(loads), '.2f')} (each: {', '.join(f'{x:.2f}' for x in loads)})", "", "",
               "< 1 s", "met" if (median(loads) or 99) < 1.0 else "**missed**")
    report.row("6", f"hot swap `hanji.activate()` of a live applet (ms, median / max of {SWAPS})",
               f"{fmt((median(swaps) or 0) * ms, '.1f')} / {fmt(max(swaps) * ms if swaps else None, '.1f')}", "", "",
               "< 20 ms", "met" if swaps and (median(swaps) or 99) * ms < 20 else "**missed**")
    report.row("6", f"`hanji.get()` round trip to a trivial resource (ms, p50 / p99 of {GETS})",
               f"{fmt((median(gets) or 0) * ms, '.2f')} / {fmt((pct(gets, 99) or 0) * ms, '.2f')}",
               f"{fmt((median(plain) or 0) * ms, '.2f')} / {fmt((pct(plain, 99) or 0) * ms, '.2f')} (urllib, same cell)",
               fmt((median(gets) or 0) / (median(plain) or 1), ".2f"), "(none set)", "reported")
    report.section(
        "## 6. Notebook\n\n"
        f"{KERNELS} fresh ipykernel processes started by `jupyter_client` (all threads pinned to the server core), "
        "each with `HANJI_APPLETS=bench/applets`, its own data dir and a free `HANJI_PORT`. A kernel is *warm* once "
        "it answered a first cell; the timings are taken inside the cells with `time.perf_counter()`; the log of the "
        "cells is `bench/raw/notebook.txt`.\n\n"
        "| measure | values |\n|---|---|\n"
        f"| kernel start (s) | {', '.join(f'{x:.2f}' for x in starts)} |\n"
        f"| `%load_ext hanji` (s) | {', '.join(f'{x:.3f}' for x in loads)} |\n"
        f"| the same cell seen from jupyter_client (s) | {', '.join(f'{x:.3f}' for x in load_walls)} |\n"
        f"| second `%load_ext hanji` (no-op) (ms) | {', '.join(f'{x * ms:.2f}' for x in second)} |\n"
        f"| hot swaps (ms) | {', '.join(f'{x * ms:.1f}' for x in swaps)} |\n"
        f"| after the swaps, `/res/benchswap/version` answered (expected `v{SWAPS}`) | `{answer}` |\n"
        f"| `hanji.get` p50 / p90 / p99 / max (ms) | {fmt((median(gets) or 0) * ms, '.2f')} / "
        f"{fmt((pct(gets, 90) or 0) * ms, '.2f')} / {fmt((pct(gets, 99) or 0) * ms, '.2f')} / "
        f"{fmt(max(gets) * ms if gets else None, '.2f')} |\n"
        f"| urllib from the same cell p50 / p99 (ms) | {fmt((median(plain) or 0) * ms, '.2f')} / "
        f"{fmt((pct(plain, 99) or 0) * ms, '.2f')} |\n"
        f"| banner | {banners[0] if banners else ''} |\n"
    )
