"""Figures 1-4 and 7: HTTP throughput and latency side by side, isolation, memory."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable
import subprocess
import time
from typing import Sequence

import _servers as S
from _harness import (BENCH, RAW, Server, Wrk, WrkResult, fmt, median, pair_ratios, parse_wrk, proc_rss_kb,
                      proc_threads)
from _report import Report, wrk_table


@dataclasses.dataclass
class Contender:
    """One side of a comparison: a label, which server (a key of the Pool) and which path."""

    label: str
    key: str
    path: str


class Pool:
    """Server processes by key. ``fresh()`` stops the running ones and starts new ones, so
    each round of a comparison runs on new processes: how a process happens to be laid
    out in memory (hash seeds, addresses) moves its speed by a few per cent, and the
    median of pairs then covers that variation instead of drawing it once."""

    def __init__(self, factories: dict[str, Callable[[], Server]], start: Callable[[Server], Server],
                 stop: Callable[[Server], None]) -> None:
        self.factories = factories
        self._start, self._stop = start, stop
        self.live: dict[str, Server] = {}

    def has(self, key: str) -> bool:
        return key in self.factories

    def fresh(self, keys: Sequence[str]) -> dict[str, Server]:
        self.close()
        for key in dict.fromkeys(keys):
            self.live[key] = self._start(self.factories[key]())
        return dict(self.live)

    def close(self) -> None:
        for server in self.live.values():
            self._stop(server)
        self.live = {}


# A saturated server uses its whole core; a run where it got less than this share of
# the core was disturbed by another process on the machine.
MIN_CPU_SHARE = 0.85
DISCARDED: list[WrkResult] = []


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "**missed**"


def alternate(wrk: Wrk, pool: Pool, contenders: Sequence[Contender], rounds: int) -> dict[str, list[WrkResult]]:
    """Run the contenders A B (C) A B (C) ... ``rounds`` times, each round on fresh server
    processes warmed up for 1 s each."""
    results: dict[str, list[WrkResult]] = {c.label: [] for c in contenders}
    retries = min(rounds, 2)  # bounded, so that a busy machine cannot stretch `make bench` much
    done = 0
    while done < rounds:
        servers = pool.fresh([c.key for c in contenders])
        for c in contenders:
            wrk.run(f"warm-up {c.label}", servers[c.key].base + c.path, servers[c.key], duration=1)
        while True:
            runs = [wrk.run(c.label, servers[c.key].base + c.path, servers[c.key]) for c in contenders]
            starved = [r for r in runs if r.cpu_share is not None and r.cpu_share < MIN_CPU_SHARE]
            if not starved or retries <= 0:
                break
            # Another process took the server core: this round says nothing about the
            # servers. Keep it in the discarded list and run the round again.
            retries -= 1
            for r in runs:
                r.label += " (discarded: server core shared)"
                DISCARDED.append(r)
        for c, r in zip(contenders, runs):
            results[c.label].append(r)
        done += 1
    pool.close()
    return results


def _rounds_table(results: dict[str, list[WrkResult]]) -> str:
    rows = []
    n = max(len(v) for v in results.values())
    for i in range(n):
        for label, runs in results.items():
            if i < len(runs):
                rows.append((str(i + 1), runs[i]))
    return wrk_table(rows)


def _check_ok(report: Report, results: dict[str, list[WrkResult]]) -> None:
    for label, runs in results.items():
        bad = [r for r in runs if not r.ok]
        if bad:
            report.note(f"{label}: {len(bad)} run(s) had socket errors or non-2xx answers "
                        f"(see {', '.join(r.raw_path for r in bad)}).")


def compare(report: Report, fig: str, title: str, a: Contender, b: Contender,
            results: dict[str, list[WrkResult]], target: float | None, target_text: str) -> float | None:
    """Add the summary rows of A versus B; return the median pair ratio of req/s."""
    ra, rb = results[a.label], results[b.label]
    ratios = pair_ratios([r.rps for r in ra], [r.rps for r in rb])
    eff = pair_ratios([r.rps_per_cpu for r in ra], [r.rps_per_cpu for r in rb])
    ratio = median(ratios)
    report.row(fig, f"{title}: req/s", fmt(median(r.rps for r in ra)), f"{fmt(median(r.rps for r in rb))} ({b.label})",
               f"{fmt(ratio, '.2f')} (pairs: {', '.join(f'{x:.2f}' for x in ratios)})", target_text,
               verdict(ratio, target) if target is not None else "reported")
    report.row(fig, f"{title}: requests per server CPU-second", fmt(median(r.rps_per_cpu for r in ra)),
               fmt(median(r.rps_per_cpu for r in rb)), fmt(median(eff), ".2f"), "(cross-check)", "")
    report.row(fig, f"{title}: latency p50 / p99 (ms)",
               f"{fmt(median(r.p50 for r in ra), '.2f')} / {fmt(median(r.p99 for r in ra), '.2f')}",
               f"{fmt(median(r.p50 for r in rb), '.2f')} / {fmt(median(r.p99 for r in rb), '.2f')}",
               "", "", "")
    return ratio


# -- figures 1-3 -------------------------------------------------------------------------

# Hanji with one of the fixes of bench/FINDINGS.md taken back out ("before"), or with
# a fix proposed but not yet in hanji/ put in ("proposed"), in memory
# (bench/servers/hanji_patched.py), run beside Hanji in the same rounds, so that every
# RESULTS.md shows what each fix gains on this machine today.
BEFORE_VARIANTS = [
    ("Hanji before fix A (access log via Python logging)", "before-access-log", ("1", "2", "3"), "before"),
    ("Hanji before fix C (a StaticFolder per request)", "before-static", ("3",), "before"),
    ("Hanji before fix E (no gc.freeze() after start-up)", "before-gc-freeze", ("1", "2"), "before"),
]


def variant_key(patches: str) -> str:
    return "hanji+" + patches


def _variants(pool: Pool, path: str, fig: str) -> list[Contender]:
    return [Contender(label, variant_key(p), path) for label, p, figs, _ in BEFORE_VARIANTS
            if pool.has(variant_key(p)) and fig in figs]


def _kind(label: str) -> str:
    return next((kind for lab, _, _, kind in BEFORE_VARIANTS if lab == label), "before")


def _variant_rows(report: Report, fig: str, title: str, variants: list[Contender], base: Contender,
                  hanji: Contender, res: dict[str, list[WrkResult]]) -> None:
    for v in variants:
        ratios = pair_ratios([r.rps for r in res[v.label]], [r.rps for r in res[base.label]])
        if _kind(v.label) == "proposed":
            gain = pair_ratios([r.rps for r in res[v.label]], [r.rps for r in res[hanji.label]])
            text = f"the proposed fix would gain × {fmt(median(gain), '.2f')}"
        else:
            gain = pair_ratios([r.rps for r in res[hanji.label]], [r.rps for r in res[v.label]])
            text = f"the fix gains × {fmt(median(gain), '.2f')}"
        report.row(fig, f"{title}: req/s, {v.label}", fmt(median(r.rps for r in res[v.label])),
                   f"{fmt(median(r.rps for r in res[base.label]))} ({base.label})",
                   f"{fmt(median(ratios), '.2f')} (pairs: {', '.join(f'{x:.2f}' for x in ratios)})",
                   "", text)


def figures_1_to_3(report: Report, wrk: Wrk, pool: Pool, rounds: int, which: set[str]) -> None:
    if "1" in which:
        figure_1(report, wrk, pool, rounds)
    if "2" in which:
        figure_2(report, wrk, pool, rounds)
    if "3" in which:
        figure_3(report, wrk, pool, rounds)


def _fix_text(variants: list[Contender]) -> str:
    if not variants:
        return ""
    return (" The rows *Hanji before fix …* are Hanji with that fix taken back out in memory, the rows "
            "*Hanji with proposed fix …* Hanji with a change not yet made in `hanji/` put in "
            "(`bench/servers/hanji_patched.py`, see the findings below); both run in the same rounds.")


# The peers of issue 14 (keys of the Pool, when installed) and the `--http twisted` variant.
RES_PEERS = [("aiohttp", "aiohttp"), ("Starlette on uvicorn", "starlette")]
DJANGO_PEERS = [("gunicorn gthread 1×10", "gunicorn"), ("granian WSGI 1 worker", "granian"),
                ("uvicorn + Django ASGI", "uvicorn-django")]
HTTP_TWISTED = ("Hanji --http twisted", "hanji-http-twisted")


def _pairs(ratios: Sequence[float]) -> str:
    return f"{fmt(median(ratios), '.2f')} (pairs: {', '.join(f'{x:.2f}' for x in ratios)})"


def peer_row(report: Report, fig: str, title: str, a: Contender, c: Contender, res: dict[str, list[WrkResult]],
             target: float | None = None, target_text: str = "(none set)") -> float | None:
    """One summary row: A against peer C, req/s and requests per server CPU-second side by side."""
    ra, rc = res[a.label], res[c.label]
    ratios = pair_ratios([r.rps for r in ra], [r.rps for r in rc])
    eff = pair_ratios([r.rps_per_cpu for r in ra], [r.rps_per_cpu for r in rc])
    ratio = median(ratios)
    report.row(fig, f"{title}: {a.label} vs {c.label}, req/s (req per CPU-s)",
               f"{fmt(median(r.rps for r in ra))} ({fmt(median(r.rps_per_cpu for r in ra))})",
               f"{fmt(median(r.rps for r in rc))} ({fmt(median(r.rps_per_cpu for r in rc))}) ({c.label})",
               f"{_pairs(ratios)}; per CPU-s {fmt(median(eff), '.2f')}", target_text,
               verdict(ratio, target) if target is not None else "reported")
    return ratio


def _http_twisted(pool: Pool, path: str) -> list[Contender]:
    label, key = HTTP_TWISTED
    return [Contender(label, key, path)] if pool.has(key) else []


def figure_1(report: Report, wrk: Wrk, pool: Pool, rounds: int) -> None:
    """A TwAppletResource through Hanji vs the same resource on a bare Site and on the peers."""
    a = Contender("Hanji", "hanji", S.RES_PATH)
    b = Contender("bare twisted.web Site", "bare-twisted", S.RES_PATH)
    variants = _variants(pool, S.RES_PATH, "1")
    twisted_front = _http_twisted(pool, S.RES_PATH)
    peers = [Contender(label, key, S.RES_PATH) for label, key in RES_PEERS if pool.has(key)]
    res = alternate(wrk, pool, [a, *variants, *twisted_front, b, *peers], rounds)
    _check_ok(report, res)
    compare(report, "1", "trivial TwAppletResource", a, b, res, 1.3, "≥ 1.3 (issue 14)")
    _variant_rows(report, "1", "trivial TwAppletResource", variants, b, a, res)
    for t in twisted_front:
        peer_row(report, "1", "trivial TwAppletResource", a, t, res, None, "(the default front's gain)")
        peer_row(report, "1", "trivial TwAppletResource", t, b, res, None, "(the twisted.web front)")
    for c in peers:
        peer_row(report, "1", "trivial TwAppletResource", a, c, res)
    missing = [label for label, key in RES_PEERS if not pool.has(key)]
    if missing:
        report.note(f"figure 1: {', '.join(missing)} not installed (`pip install -e '.[bench]'`): no column.")
    report.section(
        f"## 1. Trivial Twisted resource\n\n`GET {S.RES_PATH}` answers 14 bytes: a `TwAppletResource` "
        "returning bytes in Hanji, a plain `twisted.web.resource.Resource` on a bare `Site` in the "
        f"baseline (`bench/servers/bare_twisted.py`); the peers answer the same bytes: an aiohttp handler "
        "(`servers/aiohttp_server.py`, access log off) and a Starlette route on uvicorn "
        "(`servers/starlette_app.py`, `--no-access-log`)."
        + (" *Hanji --http twisted* is Hanji with twisted.web's own HTTP channel instead of the default one."
           if twisted_front else "")
        + f" wrk, {wrk.connections} connections, {wrk.duration:g} s per run.{_fix_text(variants)}\n\n"
        f"{_rounds_table(res)}\n"
    )


LOOP_RUNS = 3
LOOP_REQUESTS = 10000


def figure_2(report: Report, wrk: Wrk, pool: Pool, rounds: int) -> None:
    """A trivial Django view: Hanji vs bare WSGIResource, daphne and the peers; the direct
    WSGIHandler loop as the limit."""
    import _django_loop

    a = Contender("Hanji", "hanji", S.DJANGO_PATH)
    b = Contender("bare WSGIResource", "bare-wsgi", S.DJANGO_PATH)
    variants = _variants(pool, S.DJANGO_PATH, "2")
    twisted_front = _http_twisted(pool, S.DJANGO_PATH)
    peers = [Contender(label, key, S.DJANGO_PATH) for label, key in DJANGO_PEERS if pool.has(key)]
    contenders = [a, *variants, *twisted_front, b, *peers]
    d = Contender("daphne (ASGI)", "daphne", S.DJANGO_PATH) if pool.has("daphne") else None
    if d is not None:
        contenders.append(d)
    loops = []
    for _ in range(LOOP_RUNS):  # the limit, measured between the rounds' neighbours on the same core
        try:
            loops.append(_django_loop.measure(wrk.cores, LOOP_REQUESTS))
        except (RuntimeError, OSError) as err:
            report.note(f"figure 2: the WSGIHandler loop failed: {err}")
            break
    res = alternate(wrk, pool, contenders, rounds)
    _check_ok(report, res)
    compare(report, "2", "trivial Django view", a, b, res, 1.5, "≥ 1.5 (issue 14)")
    _variant_rows(report, "2", "trivial Django view", variants, b, a, res)
    for t in twisted_front:
        peer_row(report, "2", "trivial Django view", a, t, res, None, "(the default front's gain)")
        peer_row(report, "2", "trivial Django view", t, b, res, None, "(the twisted.web front)")
    for c in peers:
        if c.key == "gunicorn":
            peer_row(report, "2", "trivial Django view", a, c, res, 1.3, "≥ 1.3 (issue 14)")
        else:
            peer_row(report, "2", "trivial Django view", a, c, res)
    missing = [label for label, key in DJANGO_PEERS if not pool.has(key)]
    if missing:
        report.note(f"figure 2: {', '.join(missing)} not installed (`pip install -e '.[bench]'`): no column.")
    if d is not None:
        for c in [a, *variants]:
            ratios = pair_ratios([r.rps for r in res[c.label]], [r.rps for r in res[d.label]])
            report.row("2", f"trivial Django view: {c.label} vs daphne, req/s", fmt(median(r.rps for r in res[c.label])),
                       f"{fmt(median(r.rps for r in res[d.label]))} (daphne)", _pairs(ratios), "≈ 3 (expected)",
                       "reported")
        report.row("2", "daphne latency p50 / p99 (ms)", "",
                   f"{fmt(median(r.p50 for r in res[d.label]), '.2f')} / {fmt(median(r.p99 for r in res[d.label]), '.2f')}",
                   "", "", "")
    else:
        report.note("daphne is not installed: figure 2 has no ASGI column (`pip install daphne`).")
    limit_text = ""
    if loops:
        limit = median(x["per_cpu_second"] for x in loops)
        limit_us = median(x["us_per_request"] for x in loops)
        lines = ["| server | req/s | fraction of the limit | req per CPU-s | fraction of the limit |",
                 "|---|---|---|---|---|",
                 f"| WSGIHandler loop (the limit) | {fmt(limit)} per CPU-s | 1 | {fmt(limit)} | 1 |"]
        for c in [a, *twisted_front, b, *peers, *([d] if d else [])]:
            rps, eff = median(r.rps for r in res[c.label]), median(r.rps_per_cpu for r in res[c.label])
            frac = None if rps is None or not limit else rps / limit
            frac_cpu = None if eff is None or not limit else eff / limit
            lines.append(f"| {c.label} | {fmt(rps)} | {fmt(frac, '.2f')} | {fmt(eff)} | {fmt(frac_cpu, '.2f')} |")
            if c is a or c.key in ("gunicorn", "granian", "bare-wsgi"):
                report.row("2", f"trivial Django view: {c.label} as a fraction of the direct WSGIHandler loop "
                           "(req/s ÷ loop req per CPU-s)", fmt(frac, ".2f"), f"{fmt(limit)} req per CPU-s "
                           f"({fmt(limit_us)} µs per request)", f"per CPU-s: {fmt(frac_cpu, '.2f')}",
                           "≈ 0.4 (issue 14)" if c is a else "", "reported")
        limit_text = (
            f"\n\nThe limit: Django's own cost for this view, `WSGIHandler` called in a loop in one process on the "
            f"server core with the same settings, no server (`bench/_django_loop.py`; {LOOP_RUNS} runs of "
            f"{LOOP_REQUESTS} requests: {', '.join(format(x['us_per_request'], '.0f') for x in loops)} µs of CPU per "
            "request). Each server's figure divided by it:\n\n" + "\n".join(lines))
    report.section(
        f"## 2. Trivial Django view\n\n`GET {S.DJANGO_PATH}` is benchapp's `views.hello` "
        "(an `HttpResponse` of the same 14 bytes) with Hanji's settings and middleware in every "
        f"server: Hanji (Django pool of {S.DJANGO_THREADS}), a bare `WSGIResource` as a `Site`'s root on "
        f"a {S.DJANGO_THREADS}-thread pool (`bench/servers/bare_wsgi.py`), daphne serving "
        "`get_asgi_application()` (`bench/servers/django_asgi.py`; daphne's access log is off by default), "
        f"gunicorn (`-k gthread -w 1 --threads {S.DJANGO_THREADS}`), granian (`--interface wsgi --workers 1`, "
        "its defaults otherwise) on `servers/django_wsgi.py`, and uvicorn (`--no-access-log`) on the ASGI "
        "application. Access logs are off everywhere; every process of a server (gunicorn's arbiter and "
        "worker, granian's) is pinned to the server core and its CPU counted."
        + _fix_text(variants) + "\n\n" + _rounds_table(res) + limit_text + "\n"
    )


def figure_3(report: Report, wrk: Wrk, pool: Pool, rounds: int) -> None:
    """A 10 kB static file through Hanji vs a bare static.File."""
    a = Contender("Hanji", "hanji", S.STATIC_PATH)
    b = Contender("bare static.File", "bare-twisted", S.STATIC_PATH)
    variants = _variants(pool, S.STATIC_PATH, "3")
    res = alternate(wrk, pool, [a, *variants, b], rounds)
    _check_ok(report, res)
    compare(report, "3", "10 kB static file", a, b, res, None, "(none set)")
    _variant_rows(report, "3", "10 kB static file", variants, b, a, res)
    report.section(
        f"## 3. Static file (10 kB)\n\n`GET {S.STATIC_PATH}` from benchapp's `static/` folder: "
        "Hanji's static route vs a bare `twisted.web.static.File` on the same folder."
        + _fix_text(variants) + "\n\n" + _rounds_table(res) + "\n"
    )


# -- figure 4 ----------------------------------------------------------------------------


GIL_VARIANT = ("Hanji before fix D (GIL switch interval 5 ms)", "before-switch-interval")


def figure_4(report: Report, wrk: Wrk, pool: Pool, rounds: int, threads: int) -> None:
    """Figure 4 on fresh processes of Hanji (and Hanji before fix D, if the pool has it)."""
    keys = ["hanji"] + (["hanji-before-switch"] if pool.has("hanji-before-switch") else [])
    servers = pool.fresh(keys)
    try:
        _figure_4(report, wrk, servers["hanji"], rounds, threads, servers.get("hanji-before-switch"))
    finally:
        pool.close()


def _figure_4(report: Report, wrk: Wrk, hanji: Server, rounds: int, threads: int,
              variant: Server | None = None) -> None:
    """p50/p99 of /res with 1 connection: idle, while 2x pool-size views sleep, while
    CPU views run (and, with ``variant``, the CPU case again on Hanji before fix D)."""
    probe_kw = {"connections": 1}
    load_conns = 2 * threads
    bg_seconds = float(math.ceil(1.0 + wrk.duration + 1.0))  # covers the probe, which starts 1 s in
    targets = [hanji] + ([variant] if variant is not None else [])
    for server in targets:
        wrk.run("warm-up probe", server.base + S.RES_PATH, server, duration=1, **probe_kw)
        wrk.run("warm-up cpu view", server.base + S.CPU_PATH, server, duration=1, connections=2)
    conditions = [("idle", hanji, None), ("sleeping views", hanji, S.SLEEP_PATH), ("CPU-bound views", hanji, S.CPU_PATH)]
    if variant is not None:
        conditions.append((f"CPU-bound views, {GIL_VARIANT[0]}", variant, S.CPU_PATH))
    runs: dict[str, list[WrkResult]] = {label: [] for label, _, _ in conditions}
    background: dict[str, list[WrkResult]] = {label: [] for label, _, path in conditions if path}
    for _ in range(rounds):
        for label, server, path in conditions:
            url = server.base + S.RES_PATH
            if path is None:
                r = wrk.run(label, url, server, **probe_kw)
                runs[label].append(r)
                continue
            bg, bg_raw = wrk.start_background(f"background {label}", server.base + path,
                                              connections=load_conns, duration=bg_seconds)
            time.sleep(1.0)  # let every background connection get its request in
            r = wrk.run(label, url, server, **probe_kw)
            runs[label].append(r)
            try:
                bg.wait(bg_seconds + 30)
            except subprocess.TimeoutExpired:
                bg.kill()
            b = parse_wrk(bg_raw.read_text(), f"background {label}")
            b.raw_path = str(bg_raw.relative_to(BENCH))
            background[label].append(b)
            time.sleep(2.2)  # requests wrk abandoned still run in the pool
    idle = runs["idle"]
    for label, _, path in conditions[1:]:
        loaded = runs[label]
        r50 = pair_ratios([r.p50 for r in loaded], [r.p50 for r in idle])
        r99 = pair_ratios([r.p99 for r in loaded], [r.p99 for r in idle])
        sleeping = path == S.SLEEP_PATH
        report.row("4", f"`/res` latency p50 / p99 (ms) while {load_conns} {label} run",
                   f"{fmt(median(r.p50 for r in loaded), '.2f')} / {fmt(median(r.p99 for r in loaded), '.2f')}",
                   f"{fmt(median(r.p50 for r in idle), '.2f')} / {fmt(median(r.p99 for r in idle), '.2f')} (idle)",
                   f"× {fmt(median(r50), '.1f')} / × {fmt(median(r99), '.1f')}"
                   + ("" if sleeping else f" (p50 per round: {', '.join(f'{r.p50:.2f}' for r in loaded)} ms)"),
                   "p50 within 1.5 × idle" if sleeping else "(GIL: reported)",
                   verdict(median(r50), 1.5, higher_is_better=False) if sleeping else "reported")
        if not sleeping:
            report.row("4", f"Django throughput of the CPU-bound views ({label})",
                       fmt(median(b.rps for b in background[label]), ".1f") + " req/s", "", "", "", "reported")
    table = []
    for i in range(rounds):
        for label, rr in runs.items():
            table.append((str(i + 1), rr[i]))
    bg_table = []
    for i in range(rounds):
        for label, bb in background.items():
            bg_table.append((str(i + 1), bb[i]))
    report.section(
        f"## 4. Reactor isolation\n\nA `/res` probe (wrk, 1 connection, {wrk.duration:g} s) measured idle, then "
        f"while {load_conns} requests (twice the Django pool of {threads}) to `{S.SLEEP_PATH}` "
        f"(`time.sleep(2)`) are in flight, then while {load_conns} connections hammer `{S.CPU_PATH}` "
        "(50 ms of this thread's CPU time in pure Python per request, holding the GIL). The background load "
        "is a second wrk on the load core, started 1 s before the probe."
        + (" `hanji serve` sets `sys.setswitchinterval(0.001)` (fix D); the last condition runs on a second "
           "Hanji process where that call is made a no-op (CPython's default, 5 ms)."
           if variant is not None else "")
        + "\n\nProbe:\n\n" + wrk_table(table) + "\n\nBackground load (Django views):\n\n" + wrk_table(bg_table) + "\n"
    )


# -- figure 7 ----------------------------------------------------------------------------

MIX_LUA = """\
-- Rotate over Hanji's three kinds of route: Twisted resource, Django view, static file.
local paths = {"%s", "%s", "%s", "%s"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
""" % (S.RES_PATH, S.DJANGO_PATH, S.RES_PATH, S.STATIC_PATH)


def figure_7(report: Report, wrk: Wrk, hanji: Server, total: int, bound_mb: float) -> None:
    """RSS idle, then after each chunk of mixed requests up to 2 x ``total``."""
    script = RAW / "mix.lua"
    script.write_text(MIX_LUA)
    time.sleep(1.0)
    samples = [(0, proc_rss_kb(hanji.pid), proc_threads(hanji.pid))]
    done = 0
    chunk = 0
    max_chunks = 60  # bounded, whatever the speed
    errors = 0
    while done < 2 * total and chunk < max_chunks:
        chunk += 1
        r = wrk.run(f"memory mix chunk {chunk}", hanji.base + "/", hanji, script=script, duration=wrk.duration)
        done += r.requests
        errors += r.errors + r.non2xx
        samples.append((done, proc_rss_kb(hanji.pid), proc_threads(hanji.pid)))

    def rss_at(n: int) -> tuple[int, int]:
        for count, rss, _ in samples:
            if count >= n:
                return count, rss
        return samples[-1][0], samples[-1][1]

    idle = samples[0][1]
    n1, at1 = rss_at(total)
    n2, at2 = rss_at(2 * total)
    growth_mb = (at2 - at1) / 1024
    report.row("7", f"server RSS idle → after {total // 1000}k requests (MB)", f"{idle / 1024:.1f} → {at1 / 1024:.1f} (at {n1:,})",
               "", "", "", "reported")
    report.row("7", f"RSS growth over the next ~{total // 1000}k requests (MB)", f"{growth_mb:+.1f} (at {n2:,})", "", "",
               f"≤ {bound_mb:g} MB", verdict(growth_mb, bound_mb, higher_is_better=False))
    if errors:
        report.note(f"figure 7: {errors} socket errors or non-2xx answers during the memory run.")
    lines = ["| requests so far | RSS MB | threads |", "|---|---|---|"]
    lines += [f"| {n:,} | {rss / 1024:.1f} | {th} |" for n, rss, th in samples]
    report.section(
        f"## 7. Memory\n\nA fresh Hanji process; RSS read from `/proc/<pid>/statm` when idle and after each "
        f"{wrk.duration:g} s wrk chunk of a mix (per 4 requests: 2 `/res`, 1 Django view, 1 static file; "
        f"`bench/raw/mix.lua`), until {2 * total:,} requests. The first {total:,} warm caches and "
        f"grow pools; the bound applies to the second {total:,}.\n\n" + "\n".join(lines) + "\n"
    )
