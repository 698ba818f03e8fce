"""Hanji side by side with bare Twisted, twisted.web.wsgi and its peers; writes bench/RESULTS.md.

    .venv/bin/python bench/run.py                 # everything (what `make bench` runs)
    .venv/bin/python bench/run.py --only 1,2      # some figures, written to bench/raw/
    .venv/bin/python bench/run.py --only 8 --rounds 1 --duration 1   # a quick check of one figure
    .venv/bin/python bench/run.py --only 1 --patches before-access-log   # Hanji as it was

Figures: 1 `/res` (vs bare Site, aiohttp, Starlette), 2 Django view (vs bare WSGIResource,
gunicorn, granian, uvicorn, daphne; the WSGIHandler loop as the limit), 3 static file,
4 reactor isolation, 5 websockets (vs bare twisted.web.websocket and the `websockets`
library), 6 notebook, 7 memory; issue 15: 8 Django view with 2 workers, 9 `/res` latency
beside CPU-bound views with 1 and 2 workers, 10 broadcast across 2 workers (supervisor
and Redis bus). Figures 8-10 skip, with a note, when this build has no `--workers`.

In figures 1-7 each server is its own process (or process group) pinned to one core, the
load generators (wrk and the Python clients) to another; in figures 8-10 the servers may
use both cores. Pairs run A B A B; ratios are taken pair by pair and the
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

ALL = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(ALL), help="figures to run, e.g. 1,2,7 (default: all)")
    p.add_argument("--rounds", type=int, default=4,
                   help="A/B rounds per comparison in figures 1-3, each on fresh processes (default 4; "
                   "figures 4, 5, 8 and 9 use at most 3)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (default 3)")
    p.add_argument("--connections", type=int, default=20, help="wrk connections (default 20)")
    p.add_argument("--memory-requests", type=int, default=100_000, help="figure 7 step (default 100000)")
    p.add_argument("--fanout", type=int, default=1000, help="websocket clients in figure 10 (default 1000)")
    p.add_argument("--no-peers", action="store_true", help="figures 1 and 2 without the peers of issue 14")
    p.add_argument("--patches", default="", help="run Hanji with these patches from servers/hanji_patched.py")
    p.add_argument("--variant", action="append", default=[], metavar="PATCHES",
                   help="in figures 1-3, run Hanji with these patches beside Hanji (repeatable; "
                   "replaces the before-fix variants)")
    p.add_argument("--no-fixes", action="store_true", help="skip the Hanji-before-a-fix variants (figures 1-4)")
    p.add_argument("--all-fixes", action="store_true",
                   help="also run Hanji before fixes A and E in figures 1-3 (about 3 minutes more)")
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

    def guarded(fig: str, title: str, run: Callable[[], None]) -> None:
        """Run one figure if selected; a figure that fails is reported as failed (row and
        note, with the error) and its servers stopped, so that the others still run."""
        if fig not in figures:
            return
        print(f"bench: [{(time.monotonic() - t0) / 60:.1f} min] figure {fig} ({title}) …", file=sys.stderr, flush=True)
        try:
            run()
        except Exception as err:
            report.row(fig, title, "failed", "", "", "", "not measured")
            report.note(f"figure {fig} failed: {type(err).__name__}: {str(err)[-800:]}")
            print(f"bench: figure {fig} failed: {err}", file=sys.stderr, flush=True)
            for s in list(started):
                stop(s)

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
            elif not args.all_fixes:
                # Fixes A and E are old and were measured in every run since (bench/FINDINGS.md);
                # the peers took their place, which keeps `make bench` under 20 minutes.
                old = ("before-access-log", "before-gc-freeze")
                http_figs.BEFORE_VARIANTS[:] = [v for v in http_figs.BEFORE_VARIANTS if v[1] not in old]
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
            if not args.no_peers:
                peers: dict[str, tuple[str, Callable[[], Server]]] = {
                    "gunicorn": ("gunicorn", lambda: S.gunicorn(cores)),
                    "granian": ("granian", lambda: S.granian(cores)),
                    "uvicorn-django": ("uvicorn", lambda: S.uvicorn_django(cores)),
                    "aiohttp": ("aiohttp", lambda: S.aiohttp(cores)),
                    "starlette": ("starlette", lambda: S.starlette(cores)),
                }
                for key, (module, factory) in peers.items():
                    if S.available(module) and (module != "starlette" or S.available("uvicorn")):
                        factories[key] = factory
            if S.hanji_has("--http") and not args.patches:
                factories[http_figs.HTTP_TWISTED[1]] = lambda: S.hanji(cores, "hanji-http-twisted",
                                                                      extra=["--http", "twisted"])
            pool = http_figs.Pool(factories, start, stop)
            for fig, title, fn in (
                ("1", "trivial `/res` resource", lambda: http_figs.figure_1(report, wrk, pool, args.rounds)),
                ("2", "trivial Django view", lambda: http_figs.figure_2(report, wrk, pool, args.rounds)),
                ("3", "static file", lambda: http_figs.figure_3(report, wrk, pool, args.rounds)),
                ("4", "reactor isolation", lambda: http_figs.figure_4(report, wrk, pool, min(args.rounds, 3),
                                                                       S.DJANGO_THREADS)),
            ):
                guarded(fig, title, fn)
            pool.close()

        def figure_7() -> None:
            hanji = start(S.hanji(cores, "hanji-memory", patches=args.patches))
            http_figs.figure_7(report, wrk, hanji, args.memory_requests, bound_mb=5.0)
            stop(hanji)

        def figure_5() -> None:
            import _ws_figure

            _ws_figure.figure_5(report, cores, start, stop, args)

        def figure_6() -> None:
            import _notebook_figure

            _notebook_figure.figure_6(report, cores, args)

        guarded("5", "websockets", figure_5)
        guarded("6", "notebook", figure_6)
        guarded("7", "memory", figure_7)
        if {"8", "9", "10"} & set(figures):
            import _workers_figures as wf

            guarded("8", "Django view with 2 workers",
                    lambda: wf.figure_8(report, wrk, cores, start, stop, min(args.rounds, 3)))
            guarded("9", "/res latency with 1 and 2 workers",
                    lambda: wf.figure_9(report, wrk, cores, start, stop, min(args.rounds, 3)))
            guarded("10", "broadcast across workers", lambda: wf.figure_10(report, cores, start, stop,
                                                                           conns=args.fanout))
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
