"""Figure 5: websockets through Hanji vs bare ``twisted.web.websocket``."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any, Callable

import _servers as S
from _harness import BENCH, PYTHON, RAW, Cores, Server, fmt, median, pair_ratios, proc_cpu_seconds, proc_rss_kb
from _http_figures import verdict
from _report import Report
from support.net import free_port

ECHO_N = 2000
FANOUT_CONNS = 1000
# Hanji pings an idle connection after 20 s of silence (TwAppletWebSocket.ping_interval):
# the idle window covers one full ping period, so the figure includes the keepalive.
IDLE_SECONDS = 21.0
BROADCASTS = 15


def bare_websocket(cores: Cores) -> Server:
    port = free_port()
    return Server("bare-websocket", [PYTHON, str(S.SERVERS / "bare_websocket.py"), str(port)],
                  cores=cores, port=port, ready_path=S.RES_PATH)


class Client:
    """ws_client.py on the load core, its stdout read line by line with deadlines."""

    def __init__(self, cores: Cores, args: list[str], raw_name: str) -> None:
        self.raw = RAW / "ws" / raw_name
        self.raw.parent.mkdir(parents=True, exist_ok=True)
        cmd = [*cores.prefix(cores.load), PYTHON, str(BENCH / "ws_client.py"), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._log = open(self.raw, "w")
        self._log.write(" ".join(cmd) + "\n\n")
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(f"ws_client: no {prefix!r} line within {timeout}s (see {self.raw})")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"ws_client exited before {prefix!r} (see {self.raw})")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def result(self, timeout: float) -> dict[str, Any]:
        data = json.loads(self.expect("RESULT", timeout))
        self.proc.wait(10)
        self._log.close()
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _echo(cores: Cores, server: Server, tag: str) -> dict[str, Any]:
    cpu0 = proc_cpu_seconds(server.pid)
    t0 = time.monotonic()
    c = Client(cores, ["echo", server.base.replace("http", "ws") + "/ws/benchapp/echo", str(ECHO_N)], f"echo-{tag}.txt")
    data = c.result(120)
    data["server_cpu_share"] = (proc_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
    return data


def _fanout(cores: Cores, server: Server, tag: str, idle: float = IDLE_SECONDS) -> dict[str, Any]:
    rss0 = proc_rss_kb(server.pid)
    c = Client(cores, ["fanout", server.base.replace("http", "ws") + "/ws/benchapp/fanout", str(FANOUT_CONNS),
                       str(idle), str(BROADCASTS)], f"fanout-{tag}.txt")
    open_seconds = float(c.expect("OPEN", 120))
    cpu0, t0 = proc_cpu_seconds(server.pid), time.monotonic()
    c.expect("IDLE_DONE", idle + 30)
    cpu1, t1 = proc_cpu_seconds(server.pid), time.monotonic()
    rss1 = proc_rss_kb(server.pid)
    data = c.result(120)
    data.update(open_seconds=open_seconds, idle_cpu_share=(cpu1 - cpu0) / (t1 - t0),
                rss_before_kb=rss0, rss_open_kb=rss1)
    return data


def figure_5(report: Report, cores: Cores, start: Callable[[Server], Server], stop: Callable[[Server], None],
             args: Any) -> None:
    hanji = start(S.hanji(cores, "hanji-ws", patches=args.patches))
    bare = start(bare_websocket(cores))
    lib = start(S.websockets_lib(cores)) if S.available("websockets") else None
    try:
        probe = subprocess.run([*cores.prefix(cores.load), PYTHON, str(BENCH / "ws_client.py"), "echo",
                                hanji.base.replace("http", "ws") + "/ws/benchapp/echo", "10"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            report.row("5", "websockets", "not available", "", "", "", "not measured")
            report.note("figure 5: Hanji's /ws/benchapp/echo did not answer (websocket support missing?): "
                        + probe.stdout[-300:] + probe.stderr[-300:])
            return
        echo: dict[str, list[dict[str, Any]]] = {"Hanji": [], "bare": [], "websockets": []}
        for i in range(min(args.rounds, 3)):
            echo["Hanji"].append(_echo(cores, hanji, f"hanji-{i + 1}"))
            echo["bare"].append(_echo(cores, bare, f"bare-{i + 1}"))
            if lib is not None:
                echo["websockets"].append(_echo(cores, lib, f"websockets-{i + 1}"))
        fan = {"Hanji": _fanout(cores, hanji, "hanji"), "bare": _fanout(cores, bare, "bare")}
        if lib is not None:
            fan["websockets"] = _fanout(cores, lib, "websockets", idle=3.0)  # its idle CPU is not compared
    finally:
        stop(hanji)
        stop(bare)
        if lib is not None:
            stop(lib)

    h, b = echo["Hanji"], echo["bare"]
    r50 = pair_ratios([x["p50"] for x in h], [x["p50"] for x in b])
    rps = pair_ratios([x["per_second"] for x in h], [x["per_second"] for x in b])
    report.row("5", "websocket echo round trip p50 / p99 (ms)",
               f"{fmt(median(x['p50'] for x in h), '.3f')} / {fmt(median(x['p99'] for x in h), '.3f')}",
               f"{fmt(median(x['p50'] for x in b), '.3f')} / {fmt(median(x['p99'] for x in b), '.3f')} (bare twisted.web.websocket)",
               f"p50 {fmt(median(r50), '.2f')}; round trips/s {fmt(median(rps), '.2f')}", "(none set)", "reported")
    fh, fb = fan["Hanji"], fan["bare"]
    report.row("5", f"server CPU with {FANOUT_CONNS} idle connections ({IDLE_SECONDS:g} s)",
               f"{100 * fh['idle_cpu_share']:.1f}% of a core", f"{100 * fb['idle_cpu_share']:.1f}%", "", "(none set)", "reported")
    report.row("5", f"server RSS with {FANOUT_CONNS} connections open (MB)",
               f"{fh['rss_open_kb'] / 1024:.1f} (+{(fh['rss_open_kb'] - fh['rss_before_kb']) / 1024:.1f})",
               f"{fb['rss_open_kb'] / 1024:.1f} (+{(fb['rss_open_kb'] - fb['rss_before_kb']) / 1024:.1f})", "", "", "reported")
    report.row("5", f"broadcast to {FANOUT_CONNS}: until the last client has it (ms, median of {BROADCASTS})",
               fmt(median(fh["broadcast_ms"]), ".1f"), fmt(median(fb["broadcast_ms"]), ".1f"),
               fmt((median(fh["broadcast_ms"]) or 0) / (median(fb["broadcast_ms"]) or 1), ".2f"), "(none set)", "reported")
    report.row("5", f"broadcast to {FANOUT_CONNS}: the server's broadcast call (ms)",
               fmt(median(fh["server_call_ms"]), ".2f"), fmt(median(fb["server_call_ms"]), ".2f"),
               fmt((median(fh["server_call_ms"]) or 0) / (median(fb["server_call_ms"]) or 1), ".2f"), "", "reported")
    fw = fan.get("websockets")
    if fw is not None:
        w = echo["websockets"]
        rw = pair_ratios([x["p50"] for x in h], [x["p50"] for x in w])
        report.row("5", "websocket echo round trip p50 / p99 (ms), vs the `websockets` library",
                   f"{fmt(median(x['p50'] for x in h), '.3f')} / {fmt(median(x['p99'] for x in h), '.3f')}",
                   f"{fmt(median(x['p50'] for x in w), '.3f')} / {fmt(median(x['p99'] for x in w), '.3f')} (websockets)",
                   f"p50 {fmt(median(rw), '.2f')}", "(none set)", "reported")
        last = (median(fh["broadcast_ms"]) or 0) / (median(fw["broadcast_ms"]) or 1)
        report.row("5", f"broadcast to {FANOUT_CONNS} vs the `websockets` library: last client (ms, median of "
                   f"{BROADCASTS})", fmt(median(fh["broadcast_ms"]), ".1f"),
                   f"{fmt(median(fw['broadcast_ms']), '.1f')} (websockets)", fmt(last, ".2f"),
                   "≤ 1.0 (issue 14)", verdict(last, 1.0, higher_is_better=False))
        report.row("5", f"broadcast to {FANOUT_CONNS} vs the `websockets` library: first client (ms)",
                   fmt(median(fh["first_ms"]), ".2f"), f"{fmt(median(fw['first_ms']), '.2f')} (websockets)",
                   fmt((median(fh["first_ms"]) or 0) / (median(fw["first_ms"]) or 1), ".2f"), "(none set)", "reported")
    else:
        report.note("figure 5: the `websockets` package is not installed: no comparison with it.")

    def echo_rows(label: str, runs: list[dict[str, Any]]) -> list[str]:
        return [f"| {i + 1} | {label} | {x['p50']:.3f} | {x['p99']:.3f} | {x['per_second']:.0f} | "
                f"{100 * x['server_cpu_share']:.0f}% |" for i, x in enumerate(runs)]

    lines = ["| run | server | p50 ms | p99 ms | round trips/s | server CPU |", "|---|---|---|---|---|---|"]
    for i in range(len(h)):
        lines += echo_rows("Hanji", h)[i:i + 1] + echo_rows("bare", b)[i:i + 1]
        lines += echo_rows("websockets", echo["websockets"])[i:i + 1]
    fan_lines = [
        "| server | open 1000 (s) | idle CPU | RSS before → open (MB) | until last client (ms) | first client (ms) | "
        "server call (ms) | client CPU per broadcast (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, f in (("Hanji", fh), ("bare", fb), ("websockets", fan.get("websockets"))):
        if f is None:
            continue
        fan_lines.append(
            f"| {label} | {f['open_seconds']:.2f} | {100 * f['idle_cpu_share']:.1f}% | "
            f"{f['rss_before_kb'] / 1024:.1f} → {f['rss_open_kb'] / 1024:.1f} | "
            f"{', '.join(f'{x:.1f}' for x in f['broadcast_ms'])} | {', '.join(f'{x:.1f}' for x in f['first_ms'])} | "
            f"{', '.join(f'{x:.2f}' for x in f['server_call_ms'])} | {', '.join(f'{x:.0f}' for x in f['client_cpu_ms'])} |"
        )
    report.section(
        "## 5. Websockets\n\n"
        f"Hanji's `TwAppletWebSocket` endpoints of benchapp (`/ws/benchapp/echo`, `/ws/benchapp/fanout`) vs the "
        "same two endpoints written directly on `twisted.web.websocket` (`bench/servers/bare_websocket.py`, "
        "*bare*) and on the `websockets` library (`bench/servers/websockets_server.py`, asyncio; its fan-out uses "
        "the library's `broadcast()`, which writes to every connection at once). "
        "The client is `bench/ws_client.py` (the `websockets` package, asyncio, keepalive off) on the load core.\n\n"
        f"Echo: {ECHO_N} sequential round trips of a 64-byte text message on one connection, after 200 warm-up "
        "ones (one connection, so the server is mostly idle between messages).\n\n" + "\n".join(lines) + "\n\n"
        f"Fan-out: {FANOUT_CONNS} connections opened 50 at a time, idle for {IDLE_SECONDS:g} s (server CPU measured "
        f"over that window; Hanji pings a connection after 20 s of silence, so its keepalive is included; the "
        "`websockets` server idles 3 s only, its idle CPU is not compared), then "
        f"{BROADCASTS} broadcasts of one short text message, each timed from the send of the trigger to the moment "
        "the last of the 1000 connections has it. One Python client receives all 1000 copies on one core, so "
        "that figure is bounded by the client (its CPU time per broadcast is in the last column); the server's "
        "own `broadcast()` call, timed on the reactor and sent back to the trigger connection, isolates the "
        "server side.\n\n" + "\n".join(fan_lines) + "\n"
    )
