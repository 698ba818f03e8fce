"""Figures 8-10 (issue 15): several worker processes, with the servers free to use both cores.

Runs in the harness process. Unlike figures 1-7, the servers here are not pinned: each may
use both cores (a supervisor's workers, gunicorn's and uvicorn's workers), while wrk and the
websocket client stay pinned to the load core, which they therefore share with the servers.
Every figure skips cleanly, with a note, when ``hanji serve --help`` does not list
``--workers`` (or ``--bus`` for the Redis row): "not available in this build".

8. The trivial Django view (benchapp's ``pid`` view: the same ``HttpResponse`` with the
   answering process's id as the body) with ``--workers 2`` vs ``--workers 1`` vs gunicorn
   gthread 2 workers × 10 threads vs uvicorn 2 workers; a wrk script counts the bodies, so
   each worker's share of the requests is known, and each worker's CPU is read from /proc.
9. ``/res`` latency (1 connection) idle and while 20 connections run 50 ms CPU-bound views,
   with ``--workers 1`` and ``--workers 2``.
10. Broadcast to 1,000 websocket clients on one worker, then spread over 2 workers through
   the supervisor's relay (the default bus) and through Redis (a throwaway redis-server).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import _servers as S
from _harness import BENCH, RAW, Cores, Server, Wrk, WrkResult, fmt, median, pair_ratios, parse_wrk, proc_children
from _harness import proc_cpu_seconds
from _http_figures import verdict
from _report import Report, wrk_table

PID_PATH = "/applets/benchapp/pid"
NOT_AVAILABLE = "not available in this build"

# Counts the response bodies (process ids) of wrk's thread; printed by done() as "PID <pid> <n>".
PID_LUA = """\
local threads = {}
setup = function(thread) table.insert(threads, thread) end
counts = {}
response = function(status, headers, body)
  counts[body] = (counts[body] or 0) + 1
end
done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do io.write(string.format("PID %s %d\\n", k, v)) end
  end
end
"""

Start = Callable[[Server], Server]
Stop = Callable[[Server], None]


def _free(cores: Cores) -> Cores:
    """Servers unpinned (both cores), load generators still on the load core."""
    return Cores(None, cores.load)


def _skip(report: Report, fig: str, what: str, option: str) -> bool:
    if S.hanji_has(option):
        return False
    report.row(fig, what, NOT_AVAILABLE, "", "", "", "skipped")
    report.note(f"figure {fig}: `hanji serve --help` lists no `{option}`: {NOT_AVAILABLE}; skipped.")
    return True


def _failed(report: Report, fig: str, what: str, err: BaseException) -> None:
    report.row(fig, what, "failed", "", "", "", "not measured")
    report.note(f"figure {fig} failed: {type(err).__name__}: {str(err)[-600:]}")


def _cpu_by_pid(server: Server) -> dict[int, float]:
    out = {}
    for pid in [server.pid, *proc_children(server.pid)]:
        try:
            out[pid] = proc_cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            pass
    return out


# -- figure 8 ----------------------------------------------------------------------------------


def _contenders_8(cores: Cores) -> list[tuple[str, Callable[[], Server]]]:
    free = _free(cores)
    out: list[tuple[str, Callable[[], Server]]] = [
        ("Hanji --workers 2", lambda: S.hanji(free, "hanji-workers-2", extra=["--workers", "2"])),
        ("Hanji --workers 1", lambda: S.hanji(free, "hanji-workers-1", extra=["--workers", "1"])),
    ]
    if S.available("gunicorn"):
        out.append(("gunicorn gthread 2×10", lambda: S.gunicorn(free, workers=2, tag="gunicorn-gthread-2x10")))
    if S.available("uvicorn"):
        out.append(("uvicorn 2 workers", lambda: S.uvicorn_django(free, workers=2)))
    return out


def _pid_run(wrk: Wrk, label: str, server: Server, script: Path, **kw: Any) -> tuple[WrkResult, dict[str, int],
                                                                                     dict[int, float]]:
    """One wrk run on the pid view: the result, requests per answering pid, CPU seconds per pid."""
    cpu0 = _cpu_by_pid(server)
    r = wrk.run(label, server.base + PID_PATH, server, script=script, **kw)
    cpu1 = _cpu_by_pid(server)
    text = (BENCH / r.raw_path).read_text()
    counts = {pid: int(n) for pid, n in re.findall(r"^PID (\d+) (\d+)$", text, re.M)}
    cpu = {pid: cpu1[pid] - cpu0[pid] for pid in cpu1 if pid in cpu0}
    return r, counts, cpu


def _shares(parent: int, counts: dict[str, int], cpu: dict[int, float], seconds: float) -> str:
    """Each process's share of the requests and of a core: the workers (by requests; one that
    answered nothing shows 0 %), then the parent (supervisor, arbiter)."""
    total = sum(counts.values()) or 1
    by_pid = {int(pid): n for pid, n in counts.items() if pid.isdigit()}
    pids = sorted(set(by_pid) | set(cpu),
                  key=lambda pid: (pid == parent, -by_pid.get(pid, 0), -cpu.get(pid, 0.0)))
    parts = []
    for pid in pids:
        who = "parent" if pid == parent else f"pid {pid}"
        parts.append(f"{who}: {100 * by_pid.get(pid, 0) / total:.0f} % of requests, "
                     f"{100 * cpu.get(pid, 0.0) / max(seconds, 1e-9):.0f} % CPU")
    return "; ".join(parts)


def figure_8(report: Report, wrk: Wrk, cores: Cores, start: Start, stop: Stop, rounds: int) -> None:
    title = "trivial Django view, 2 workers"
    if _skip(report, "8", title, "--workers"):
        return
    script = RAW / "pid.lua"
    script.write_text(PID_LUA)
    contenders = _contenders_8(cores)
    res: dict[str, list[WrkResult]] = {label: [] for label, _ in contenders}
    shares: dict[str, list[str]] = {label: [] for label, _ in contenders}
    for _ in range(rounds):
        for label, factory in contenders:
            server = start(factory())
            try:
                _pid_run(wrk, f"warm-up {label}", server, script, duration=1)
                r, counts, cpu = _pid_run(wrk, label, server, script)
            finally:
                stop(server)
            res[label].append(r)
            shares[label].append(_shares(server.pid, counts, cpu, r.seconds))
    w2, w1 = "Hanji --workers 2", "Hanji --workers 1"
    ratios = pair_ratios([r.rps for r in res[w2]], [r.rps for r in res[w1]])
    report.row("8", f"{title}: req/s, --workers 2 vs --workers 1", fmt(median(r.rps for r in res[w2])),
               f"{fmt(median(r.rps for r in res[w1]))} (--workers 1)",
               f"{fmt(median(ratios), '.2f')} (pairs: {', '.join(f'{x:.2f}' for x in ratios)})", "≥ 1.6 (issue 15)",
               verdict(median(ratios), 1.6))
    for label, _ in contenders[2:]:
        rr = pair_ratios([r.rps for r in res[w2]], [r.rps for r in res[label]])
        report.row("8", f"{title}: req/s, --workers 2 vs {label}", fmt(median(r.rps for r in res[w2])),
                   f"{fmt(median(r.rps for r in res[label]))} ({label})",
                   f"{fmt(median(rr), '.2f')} (pairs: {', '.join(f'{x:.2f}' for x in rr)})", "≥ 1.0 (issue 15)",
                   verdict(median(rr), 1.0))
    for label, _ in contenders:
        report.row("8", f"{title}: each process's share of the requests and its CPU, {label}",
                   " / ".join(f"round {i + 1}: {s}" for i, s in enumerate(shares[label])), "", "", "both busy",
                   "reported")
    table = [(str(i + 1), res[label][i]) for i in range(rounds) for label, _ in contenders]
    report.section(
        f"## 8. Django view with two worker processes (issue 15)\n\n`GET {PID_PATH}`: benchapp's `pid` view, "
        "the trivial view answering its process id, so that a wrk script counts which worker answered. "
        "Servers are **not pinned** (free to use both cores); wrk runs on core "
        f"{cores.load}, which it shares with them. `hanji serve --workers 2` and `--workers 1` (a supervisor and "
        f"its workers, {S.DJANGO_THREADS} Django threads each), gunicorn `-k gthread -w 2 --threads "
        f"{S.DJANGO_THREADS}`, uvicorn `--workers 2` on the ASGI application; every server freshly started for "
        f"each run. wrk, {wrk.connections} connections, {wrk.duration:g} s per run; server CPU is the sum over "
        "its processes (200 % = both cores).\n\n" + wrk_table(table) + "\n\nEach worker's share of the requests "
        "(and of a core) per round:\n\n" + "\n".join(
            f"- {label}: " + "; ".join(f"round {i + 1}: {s}" for i, s in enumerate(shares[label]))
            for label, _ in contenders) + "\n"
    )


# -- figure 9 ----------------------------------------------------------------------------------


def figure_9(report: Report, wrk: Wrk, cores: Cores, start: Start, stop: Stop, rounds: int) -> None:
    title = "`/res` latency while 20 CPU-bound views run, 1 and 2 workers"
    if _skip(report, "9", title, "--workers"):
        return
    free = _free(cores)
    load_conns = 2 * S.DJANGO_THREADS
    bg_seconds = float(int(1.0 + wrk.duration + 1.0) + 1)
    rows: list[tuple[str, WrkResult]] = []
    bg_rows: list[tuple[str, WrkResult]] = []
    summary: dict[int, tuple[list[WrkResult], list[WrkResult], list[WrkResult]]] = {}
    for workers in (1, 2):
        server = start(S.hanji(free, f"hanji-isolation-{workers}", extra=["--workers", str(workers)]))
        idle, loaded, background = [], [], []
        try:
            wrk.run("warm-up probe", server.base + S.RES_PATH, server, duration=1, connections=1)
            wrk.run("warm-up cpu view", server.base + S.CPU_PATH, server, duration=1, connections=2)
            for i in range(rounds):
                r = wrk.run(f"--workers {workers} idle", server.base + S.RES_PATH, server, connections=1)
                idle.append(r)
                rows.append((str(i + 1), r))
                bg, bg_raw = wrk.start_background(f"background --workers {workers}", server.base + S.CPU_PATH,
                                                  connections=load_conns, duration=bg_seconds)
                time.sleep(1.0)
                r = wrk.run(f"--workers {workers} while CPU-bound views run", server.base + S.RES_PATH, server,
                            connections=1)
                loaded.append(r)
                rows.append((str(i + 1), r))
                try:
                    bg.wait(bg_seconds + 30)
                except subprocess.TimeoutExpired:
                    bg.kill()
                b = parse_wrk(bg_raw.read_text(), f"CPU-bound views, --workers {workers}")
                b.raw_path = str(bg_raw.relative_to(BENCH))
                background.append(b)
                bg_rows.append((str(i + 1), b))
                time.sleep(2.2)  # requests wrk abandoned still run in the pools
        finally:
            stop(server)
        summary[workers] = (idle, loaded, background)
    for workers, (idle, loaded, background) in summary.items():
        r50 = pair_ratios([r.p50 for r in loaded], [r.p50 for r in idle])
        report.row("9", f"`/res` p50 / p99 (ms) while {load_conns} CPU-bound views run, --workers {workers}",
                   f"{fmt(median(r.p50 for r in loaded), '.2f')} / {fmt(median(r.p99 for r in loaded), '.2f')}",
                   f"{fmt(median(r.p50 for r in idle), '.2f')} / {fmt(median(r.p99 for r in idle), '.2f')} (idle)",
                   f"× {fmt(median(r50), '.1f')} (p50 per round: {', '.join(f'{r.p50:.2f}' for r in loaded)} ms); "
                   f"CPU-bound views {fmt(median(b.rps for b in background), '.1f')} req/s", "(reported)", "reported")
    report.section(
        f"## 9. Reactor latency beside CPU-bound views, 1 and 2 workers (issue 15)\n\nFigure 4's probe (`GET "
        f"{S.RES_PATH}`, wrk, 1 connection, {wrk.duration:g} s) idle and while {load_conns} connections hammer "
        f"`{S.CPU_PATH}`, on `hanji serve --workers 1` and `--workers 2`, servers not pinned. The probe's one "
        "connection lands on one worker; the CPU-bound requests are spread by the kernel over both.\n\n"
        "Probe:\n\n" + wrk_table(rows) + "\n\nBackground load (Django views):\n\n" + wrk_table(bg_rows) + "\n"
    )


# -- figure 10 ---------------------------------------------------------------------------------


def _sockets(pid: int) -> int:
    """Return the number of open sockets of ``pid`` (its connections, roughly)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                continue
    except OSError:
        return 0
    return n


def _fanout_workers(cores: Cores, server: Server, tag: str, conns: int, broadcasts: int) -> dict[str, Any]:
    from _ws_figure import Client

    idle = 2.0
    pids = [server.pid, *proc_children(server.pid)]
    before = {pid: _sockets(pid) for pid in pids}
    c = Client(cores, ["fanout", server.base.replace("http", "ws") + "/ws/benchapp/fanout", str(conns),
                       str(idle), str(broadcasts)], f"fanout-{tag}.txt")
    c.expect("OPEN", 180)
    time.sleep(1.0)
    spread = {pid: _sockets(pid) - before.get(pid, 0) for pid in pids}
    c.expect("IDLE_DONE", idle + 30)
    data = c.result(180)
    data["spread"] = {pid: n for pid, n in spread.items() if n > 0}
    return data


def figure_10(report: Report, cores: Cores, start: Start, stop: Stop, conns: int = 1000,
              broadcasts: int = 15) -> None:
    title = f"broadcast to {conns} websockets over 2 workers"
    if _skip(report, "10", title, "--workers"):
        return
    from support.redis_server import REDIS_SERVER, RedisServer

    free = _free(cores)
    configs: list[tuple[str, list[str]]] = [("1 worker", ["--workers", "1"]),
                                            ("2 workers, supervisor bus (default)", ["--workers", "2"])]
    redis: RedisServer | None = None
    if not S.hanji_has("--bus"):
        report.note(f"figure 10: `hanji serve --help` lists no `--bus`: the Redis row is {NOT_AVAILABLE}.")
    elif not Path(REDIS_SERVER).exists():
        report.note("figure 10: redis-server is not installed (`make test` installs it): no Redis row.")
    else:
        redis = RedisServer(RAW / "redis")  # the tests' throwaway server, started here
        configs.append(("2 workers, Redis bus", ["--workers", "2", "--bus", redis.url]))
    results: dict[str, dict[str, Any]] = {}
    try:
        for label, extra in configs:
            tag = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            server = start(S.hanji(free, f"hanji-fanout-{tag}", extra=extra))
            try:
                results[label] = _fanout_workers(cores, server, tag, conns, broadcasts)
            except (RuntimeError, OSError) as err:
                _failed(report, "10", f"{title}: {label}", err)
            finally:
                stop(server)
    finally:
        if redis is not None:
            redis.stop()
    base = results.get("1 worker")
    for label, data in results.items():
        last, first = median(data["broadcast_ms"]), median(data["first_ms"])
        ratio = "" if base is None or data is base else fmt((last or 0) / (median(base["broadcast_ms"]) or 1), ".2f")
        spread = " / ".join(str(n) for n in sorted(data["spread"].values(), reverse=True))
        report.row("10", f"broadcast to {conns}: last / first client (ms, median of {broadcasts}), {label}",
                   f"{fmt(last, '.1f')} / {fmt(first, '.2f')}", "" if data is base else
                   f"{fmt(median(base['broadcast_ms']), '.1f')} (1 worker)" if base else "",
                   ratio, f"(reported; connections per process: {spread or 'n/a'})", "reported")
    lines = ["| configuration | connections per process | until the last client (ms) | first client (ms) | "
             "server call (ms) |", "|---|---|---|---|---|"]
    for label, d in results.items():
        lines.append(f"| {label} | {' / '.join(str(n) for n in sorted(d['spread'].values(), reverse=True))} | "
                     f"{', '.join(f'{x:.1f}' for x in d['broadcast_ms'])} | {', '.join(f'{x:.1f}' for x in d['first_ms'])} | "
                     f"{', '.join(f'{x:.2f}' for x in d['server_call_ms'])} |")
    report.section(
        f"## 10. Broadcast across workers (issue 15)\n\n{conns} websocket clients (`bench/ws_client.py fanout`, one "
        f"process on the load core) on `/ws/benchapp/fanout`; {broadcasts} broadcasts, each sent on one connection "
        "and timed until the first and the last client have it. `hanji serve --workers 1`, then `--workers 2` "
        "with the supervisor's relay (the default bus) and with `--bus redis://…` (a throwaway redis-server); "
        "servers not pinned. Connections per process: open sockets of each process counted in /proc "
        "before and after the clients connected. The server call is the `broadcast()` on the worker that got "
        "the trigger.\n\n" + "\n".join(lines) + "\n"
    )
