"""What the stall watchdog and the wrong-thread guard cost (issue 6, points 5 and 6).

    .venv/bin/python bench/guard_cost.py [--seconds 5] [--rounds 2]

Runs ``hanji serve`` with bench/applets in three set-ups, alternating them each round:
``default`` (guard off, watchdog on at 50 ms), ``no-watchdog`` (``--stall-threshold
0``) and ``debug`` (guard on). For each it measures:

- ``req/s``: wrk, 20 connections, on the /res resource (the guard's hot path);
- ``idle CPU`` and ``idle wake-ups``: CPU seconds and context switches of the whole
  process over ``--seconds`` seconds with no traffic (the watchdog's idle cost).

Then it times the wrapped calls themselves with timeit: ``reactor.callLater`` through
Hanji's wrapper, debug off and on, and a bare flag test. One machine, one run: the
ratios matter, not the absolutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the support shared with the tests

from support.server import ServerProcess  # noqa: E402

APPLETS = Path(__file__).resolve().parent / "applets"
RES = "/res/benchapp/hello"
SETUPS = {"default": [], "no-watchdog": ["--stall-threshold", "0"], "debug": ["--debug"]}


def process_counters(pid: int) -> tuple[float, int]:
    """Return (CPU seconds, context switches) summed over the threads of ``pid``
    (``/proc/<pid>/task/*/schedstat`` and ``status``)."""
    cpu_ns, switches = 0, 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu_ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except OSError:
            pass
    return cpu_ns / 1e9, switches


def measure(name: str, seconds: float) -> dict[str, float]:
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="guard-cost-")), [APPLETS], SETUPS[name])
    try:
        time.sleep(2.0)  # let start-up settle
        cpu0, sw0 = process_counters(server.pid)
        time.sleep(seconds)
        cpu1, sw1 = process_counters(server.pid)
        out = subprocess.run(["wrk", "-t", "1", "-c", "20", "-d", f"{seconds:g}s", server.url + RES],
                             capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    finally:
        server.stop()
    return {"rps": rps, "idle_cpu_ms_per_s": (cpu1 - cpu0) * 1000 / seconds,
            "idle_switches_per_s": (sw1 - sw0) / seconds}


def micro() -> dict[str, float]:
    """Time Hanji's callLater wrapper with debug off and on, and a bare flag test (ns per call)."""
    from twisted.internet import reactor
    from twisted.python import threadable

    from hanji import _threads
    from hanji.server import tracking

    threadable.registerAsIOThread()  # this thread plays the reactor's
    tracking.install(reactor)
    raw = type(reactor).callLater

    def per_call(stmt: str, g: dict[str, object]) -> float:
        n = 20000
        best = min(timeit.repeat(stmt, globals=g, number=n, repeat=7))
        return best / n * 1e9

    g = {"reactor": reactor, "raw": raw, "_threads": _threads, "noop": lambda: None}
    figures = {"raw callLater + cancel": per_call("raw(reactor, 60, noop).cancel()", g)}
    _threads.set_debug(False)
    figures["wrapped, debug off"] = per_call("reactor.callLater(60, noop).cancel()", g)
    _threads.set_debug(True)
    figures["wrapped, debug on"] = per_call("reactor.callLater(60, noop).cancel()", g)
    _threads.set_debug(False)
    figures["flag test alone"] = per_call("if _threads._debug: pass", g)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETUPS}
    for _ in range(args.rounds):
        for name in SETUPS:
            results[name].append(measure(name, args.seconds))
    print(f"{'set-up':<12} {'req/s (best)':>12} {'idle CPU ms/s':>14} {'idle switches/s':>16}  (best of {args.rounds})")
    for name, runs in results.items():
        print(f"{name:<12} {max(r['rps'] for r in runs):>12.0f} "
              f"{min(r['idle_cpu_ms_per_s'] for r in runs):>14.2f} "
              f"{min(r['idle_switches_per_s'] for r in runs):>16.1f}")
    for label, ns in micro().items():
        print(f"{label:<24} {ns:8.0f} ns")


if __name__ == "__main__":
    main()
