"""A websocket room with members that never read: does the fast member pay, does memory grow?

    .venv/bin/python bench/slow_room.py [--slow 20] [--messages 5000] [--size 10000]

Starts ``hanji serve`` with the bench applet, connects ``--slow`` members to
``/ws/benchapp/fanout`` that never read what they are sent (a small receive window),
and one fast member that sends ``--messages`` broadcasts of ``--size`` bytes, one at
a time, each waiting until its own copy comes back. Runs the same with no slow
member first. Prints the fast member's round trip (p50/p99), the server's peak RSS,
and how many slow members the server closed (1013, past their ``max_send_buffer``).
Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the support shared with the tests

from support.server import ServerProcess  # noqa: E402
from support.ws import RawClient  # noqa: E402

BENCH_APPLETS = Path(__file__).resolve().parent / "applets"
MB = 1024 * 1024


def rss(pid: int) -> int:
    """Return the resident set size of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(slow: int, messages: int, size: int) -> dict[str, float]:
    """Run one room with ``slow`` non-reading members; return the figures."""
    with tempfile.TemporaryDirectory(prefix="hanji-slow-room-") as tmp:
        server = ServerProcess(Path(tmp), [BENCH_APPLETS])
        try:
            members = [RawClient(server, "/ws/benchapp/fanout", rcvbuf=8192) for _ in range(slow)]
            peak = [rss(server.pid)]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.1):
                    peak.append(rss(server.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            url = "ws" + server.url[len("http"):] + "/ws/benchapp/fanout"
            payload = "broadcast:" + "m" * max(0, size - 10)
            times = []
            with connect(url, max_size=None, compression=None) as fast:
                for _ in range(messages):
                    t0 = time.perf_counter()
                    fast.send(payload)
                    while True:  # our broadcast copy, then the "took:" note
                        reply = fast.recv(timeout=30)
                        if reply == payload:
                            times.append((time.perf_counter() - t0) * 1000)
                        elif isinstance(reply, str) and reply.startswith("took:"):
                            break
            stop.set()
            sampler.join()
            closed = 0
            for member in members:
                member.sock.settimeout(0.2)
                try:
                    while member.sock.recv(1 << 20):
                        pass
                    closed += 1  # the server hung up
                except TimeoutError:
                    pass  # still open
                except OSError:
                    closed += 1  # reset by the server
                member.close()
            times.sort()
            return {"p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1],
                    "peak_mb": max(peak) / MB, "closed": closed}
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slow", type=int, default=20, help="members that never read (default 20)")
    p.add_argument("--messages", type=int, default=5000, help="broadcasts sent (default 5000)")
    p.add_argument("--size", type=int, default=10000, help="bytes per broadcast (default 10000)")
    args = p.parse_args(argv)
    for slow in (0, args.slow):
        r = run(slow, args.messages, args.size)
        print(f"slow_room: {slow} slow members, {args.messages} x {args.size} B: fast member round trip "
              f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms; server peak RSS {r['peak_mb']:.0f} MB; "
              f"slow members closed by the server: {r['closed']}/{slow}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
