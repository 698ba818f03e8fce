"""Profile one server under wrk load with py-spy; print the hottest frames.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile.py hanji /res/benchapp/hello
    .venv/bin/python bench/profile.py hanji /res/benchapp/hello --patches before-access-log
    .venv/bin/python bench/profile.py bare-twisted /res/benchapp/hello

The server is pinned to the server core and loaded by wrk (20 connections) on the
other; py-spy samples the process for 5 s. Prints the functions with the largest inclusive
share of the samples (lines of one function merged); the raw samples are in bench/raw/profile-*.txt.
This is the tool behind the findings in bench/FINDINGS.md; `make bench` does not run it.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# bench/ for the harness modules, tests/ for the support code shared with the tests.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]

import _servers as S  # noqa: E402
from _harness import RAW, choose_cores  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("server", choices=["hanji", "bare-twisted", "bare-wsgi"])
    p.add_argument("path", help="e.g. /res/benchapp/hello")
    p.add_argument("--patches", default="", help="Hanji fixes from servers/hanji_patched.py")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profile: py-spy is not installed; `.venv/bin/pip install py-spy`.", file=sys.stderr)
        return 2
    RAW.mkdir(parents=True, exist_ok=True)
    cores = choose_cores()
    factory = {"hanji": lambda: S.hanji(cores, "profile-hanji", patches=args.patches),
               "bare-twisted": lambda: S.bare_twisted(cores), "bare-wsgi": lambda: S.bare_wsgi(cores)}
    server = factory[args.server]()
    server.start()
    out = RAW / f"profile-{args.server}.txt"
    try:
        load = subprocess.Popen([*cores.prefix(cores.load), "wrk", "-t1", "-c20", f"-d{args.seconds + 3}s",
                                 server.base + args.path], stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        subprocess.run([spy, "record", "-p", str(server.pid), "-d", str(args.seconds), "-r", "200",
                        "-f", "raw", "-o", str(out), "--nonblocking"], capture_output=True, timeout=args.seconds + 60)
        stdout, _ = load.communicate(timeout=args.seconds + 60)
        print(next((line for line in stdout.splitlines() if "Requests/sec" in line), "").strip())
    finally:
        server.stop()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        # py-spy names a frame "func (file:line)": count each function once per sample.
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            inclusive[frame] += int(count)
    print(f"{total} samples of {args.server} {args.path}" + (f" with {args.patches}" if args.patches else ""))
    for frame, n in inclusive.most_common(args.top):
        print(f"{100 * n / max(total, 1):5.1f}%  {frame[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
