"""Hanji side by side with bare Twisted, twisted.web.wsgi and daphne; writes bench/RESULTS.md.

    .venv/bin/python bench/run.py                 # everything (what `make bench` runs)
    .venv/bin/python bench/run.py --only 1,2      # some figures, written to bench/raw/
    .venv/bin/python bench/run.py --only 1 --patches before-access-log   # Hanji as it was

Each server is its own process pinned to one core, the load generators (wrk and the
Python clients) to another. Pairs run A B A B; ratios are taken pair by pair and the
median reported. Nothing here asserts: a missed target is reported, not failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

# bench/ for the harness modules, tests/ for the support code shared with the tests.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]

import _http_figures as http_figs  # noqa: E402
import _servers as S  # noqa: E402
from _harness import BENCH, RAW, Server, Wrk, choose_cores, loadavg, other_busy_processes  # noqa: E402
from _report import Report, environment  # noqa: E402

ALL = ("1", "2", "3", "4", "5", "6", "7")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(ALL), help="figures to run, e.g. 1,2,7 (default: all)")
    p.add_argument("--rounds", type=int, default=5,
                   help="A/B rounds per comparison in figures 1-3, each on fresh processes (default 5; "
                   "figures 4 and 5 use at most 3)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (default 3)")
    p.add_argument("--connections", type=int, default=20, help="wrk connections (default 20)")
    p.add_argument("--memory-requests", type=int, default=100_000, help="figure 7 step (default 100000)")
    p.add_argument("--patches", default="", help="run Hanji with these patches from servers/hanji_patched.py")
    p.add_argument("--variant", action="append", default=[], metavar="PATCHES",
                   help="in figures 1-3, run Hanji with these patches beside Hanji (repeatable; "
                   "replaces the before-fix variants)")
    p.add_argument("--no-fixes", action="store_true", help="skip the Hanji-before-a-fix variants (figures 1-4)")
    p.add_argument("--output", type=Path, help="where to write the results "
                   "(default bench/RESULTS.md for a full unpatched run, else bench/raw/RESULTS-partial.md)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(figures) - set(ALL)
    if unknown:
        print(f"bench: unknown figure(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL)}.", file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("bench: wrk is not installed; `apt-get install wrk` (make bench does it).", file=sys.stderr)
        return 2
    full = set(figures) == set(ALL) and not args.patches
    output = args.output or (BENCH / "RESULTS.md" if full else RAW / "RESULTS-partial.md")

    t0 = time.monotonic()
    shutil.rmtree(RAW, ignore_errors=True)
    RAW.mkdir(parents=True)
    cores = choose_cores()
    if cores.pinned:
        os.sched_setaffinity(0, {cores.load})  # the harness itself stays off the server core
    wrk = Wrk(cores, connections=args.connections, duration=args.duration)
    report = Report()
    if args.patches:
        report.note(f"Hanji ran with the proposed fixes `{args.patches}` applied (bench/servers/hanji_patched.py).")
    started: list[Server] = []

    def start(server: Server) -> Server:
        started.append(server)
        server.start()
        print(f"bench: {server.name} ready at {server.base} in {server.start_seconds:.1f} s", file=sys.stderr, flush=True)
        return server

    def stop(server: Server) -> None:
        server.stop()
        if server in started:
            started.remove(server)

    busy_before = other_busy_processes({os.getpid()})
    if busy_before:
        report.note(f"Other processes were using the CPU when the run started: {', '.join(busy_before)}.")
    report.note(f"Load average at start: {loadavg()}.")
    try:
        if {"1", "2", "3", "4"} & set(figures):
            factories: dict[str, Callable[[], Server]] = {"hanji": lambda: S.hanji(cores, patches=args.patches)}
            if args.variant:
                # Experiments: replace the before-fix variants with the given patch sets.
                http_figs.BEFORE_VARIANTS[:] = [(f"Hanji with {v}", v, ("1", "2", "3"), "proposed")
                                                for v in args.variant]
            if not args.patches and not args.no_fixes:
                for _, patches, figs, _ in http_figs.BEFORE_VARIANTS:
                    key = http_figs.variant_key(patches)
                    tag = key.replace("+", "-").replace(",", "-")
                    factories[key] = lambda tag=tag, patches=patches: S.hanji(cores, tag, patches=patches)
                factories["hanji-before-switch"] = lambda: S.hanji(cores, "hanji-before-switch",
                                                                   patches=http_figs.GIL_VARIANT[1])
            factories["bare-twisted"] = lambda: S.bare_twisted(cores)
            factories["bare-wsgi"] = lambda: S.bare_wsgi(cores)
            if S.daphne_available():
                factories["daphne"] = lambda: S.daphne(cores)
            pool = http_figs.Pool(factories, start, stop)
            print("bench: figures 1-3 …", file=sys.stderr, flush=True)
            http_figs.figures_1_to_3(report, wrk, pool, args.rounds, set(figures))
            if "4" in figures:
                print("bench: figure 4 …", file=sys.stderr, flush=True)
                http_figs.figure_4(report, wrk, pool, min(args.rounds, 3), S.DJANGO_THREADS)
            pool.close()
        if "5" in figures:
            print("bench: figure 5 (websockets) …", file=sys.stderr, flush=True)
            import _ws_figure

            _ws_figure.figure_5(report, cores, start, stop, args)
        if "6" in figures:
            print("bench: figure 6 (notebook) …", file=sys.stderr, flush=True)
            import _notebook_figure

            _notebook_figure.figure_6(report, cores, args)
        if "7" in figures:
            print("bench: figure 7 (memory) …", file=sys.stderr, flush=True)
            hanji = start(S.hanji(cores, "hanji-memory", patches=args.patches))
            http_figs.figure_7(report, wrk, hanji, args.memory_requests, bound_mb=5.0)
            stop(hanji)
    finally:
        for s in list(started):
            s.stop()
    report.note(f"Load average at the end: {loadavg()}.")
    if http_figs.DISCARDED:
        from _report import wrk_table

        report.note(f"{len(http_figs.DISCARDED)} wrk runs were discarded and their round repeated because the "
                    f"server got less than {http_figs.MIN_CPU_SHARE:.0%} of its core (another process ran there); "
                    "they are listed at the end.")
        report.section("## Discarded runs\n\n" + wrk_table([("-", r) for r in http_figs.DISCARDED]) + "\n")
    elapsed = time.monotonic() - t0
    findings_path = BENCH / "FINDINGS.md"
    findings = findings_path.read_text() if findings_path.exists() else ""
    env = environment(cores.describe(), f"wrk, 1 thread, {args.connections} connections, {args.duration:g} s per run, "
                      f"{args.rounds} rounds")
    report.write(output, environment=env, elapsed=elapsed, findings=findings)
    print(f"bench: wrote {output} in {elapsed / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
