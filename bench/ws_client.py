"""Websocket load client for figure 5 (run pinned to the load core by bench/run.py).

    python ws_client.py echo URL N
        N sequential round trips of a 64-byte text message after 200 warm-up ones;
        prints one JSON line: round-trip times in ms (p50, p99, mean) and messages/s.

    python ws_client.py fanout URL CONNECTIONS IDLE_SECONDS ROUNDS
        opens CONNECTIONS connections (50 at a time), prints "OPEN <seconds>", stays
        idle IDLE_SECONDS (the harness measures the server's CPU meanwhile), prints
        "IDLE_DONE", then ROUNDS times sends "broadcast:<i>" on one connection and
        times until every connection has received it; prints one JSON line. The
        server answers the sender "took:<ms>", the time its broadcast call took.

Client keepalive pings are off, so an idle connection is silent from this side.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from websockets.asyncio.client import connect

PAYLOAD = "x" * 64


def _connect(url: str):
    return connect(url, ping_interval=None, compression=None, max_queue=None, open_timeout=30, close_timeout=2)


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def echo(url: str, n: int) -> dict:
    async with _connect(url) as ws:
        for _ in range(200):
            await ws.send(PAYLOAD)
            await ws.recv()
        rtts = []
        t_start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await ws.send(PAYLOAD)
            reply = await ws.recv()
            rtts.append((time.perf_counter() - t0) * 1000)
            if reply != PAYLOAD:
                raise RuntimeError(f"echo answered {reply[:40]!r}")
        total = time.perf_counter() - t_start
    return {"n": n, "p50": _pct(rtts, 50), "p99": _pct(rtts, 99), "mean": statistics.fmean(rtts),
            "per_second": n / total}


async def fanout(url: str, conns: int, idle: float, rounds: int) -> dict:
    t0 = time.perf_counter()
    sockets = []
    for start in range(0, conns, 50):
        batch = await asyncio.gather(*(_connect(url) for _ in range(min(50, conns - start))))
        sockets.extend(batch)
    print(f"OPEN {time.perf_counter() - t0:.3f}", flush=True)
    await asyncio.sleep(idle)
    print("IDLE_DONE", flush=True)

    received: dict[str, list[float]] = {}
    done: dict[str, asyncio.Event] = {}
    server_ms: list[float] = []

    async def reader(ws) -> None:
        async for message in ws:
            stamp = time.perf_counter()
            if message.startswith("took:"):
                server_ms.append(float(message[5:]))
                continue
            got = received.get(message)
            if got is not None:
                got.append(stamp)
                if len(got) == conns:
                    done[message].set()

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    times, firsts, cpu = [], [], []
    for i in range(rounds):
        message = f"broadcast:{i}"
        received[message], done[message] = [], asyncio.Event()
        await asyncio.sleep(0.3)
        c0 = time.process_time()
        start = time.perf_counter()
        await sockets[0].send(message)
        await asyncio.wait_for(done[message].wait(), 30)
        times.append((max(received[message]) - start) * 1000)
        firsts.append((min(received[message]) - start) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    await asyncio.sleep(0.2)  # the last "took:" answer
    for t in readers:
        t.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"connections": conns, "broadcast_ms": times, "first_ms": firsts, "client_cpu_ms": cpu,
            "server_call_ms": server_ms}


def main() -> int:
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "echo":
        result = asyncio.run(echo(url, int(sys.argv[3])))
    elif mode == "fanout":
        result = asyncio.run(fanout(url, int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
    else:
        print(f"ws_client: unknown mode {mode!r}", file=sys.stderr)
        return 2
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
