"""Profile one request on each path with py-spy under a wrk run; per-request µs per function.

    .venv/bin/python bench/profile.py                       # the four targets below
    .venv/bin/python bench/profile.py hanji-django bare-wsgi --seconds 8
    .venv/bin/python bench/profile.py hanji /res/benchapp/hello --patches before-access-log
    .venv/bin/python bench/profile.py --loop                # Django's own cost: WSGIHandler in a loop
    .venv/bin/python bench/profile.py --tree /tmp/hanji-7780a90 hanji-django   # an earlier commit

Targets: ``hanji-django`` (the trivial Django view through ``hanji serve``), ``hanji-res``
(the trivial ``/res`` resource through ``hanji serve``), ``bare-wsgi`` (the same view behind a
bare ``twisted.web.wsgi.WSGIResource``) and ``bare-twisted`` (the same resource on a bare
``Site``); ``SERVER PATH`` (server one of hanji, bare-twisted, bare-wsgi) profiles any path.
``--hanji-args`` passes extra options to ``hanji serve`` (e.g. ``"--http twisted"``).

Each server is pinned to the server core and loaded by wrk (20 connections) on the other
core; py-spy (also on the load core) samples the server at 200 Hz for ``--seconds``, keeping
only the thread that holds the GIL (``--gil``): each sample is Python running on the server's
core, in whichever thread. (Without ``--gil``, py-spy also counts threads that only
wait for the GIL, which wake every switch interval and look busy: the split is then wrong.)
The server's CPU seconds and the requests wrk completed are measured over the same window, so

    CPU µs per request = server CPU seconds / requests (user + kernel, from /proc),
    a function's µs per request = its share of the samples × user CPU µs per request,

inclusive (the function and what it calls) and self (its own lines); kernel time (system
calls, context switches) is its own row, and the context switches of all the server's
threads per request are counted (``/proc/PID/task/*/status``): each thread hand-off costs
at least one. Only the split between functions comes from sampling; the totals are measured.
Each sample is also put in the step of a request it belongs to (STEPS: parsing, hand-off into
the pool, callbacks handed back to the reactor, hand-off out, Django, …). The report goes to
bench/raw/profile-TARGET.md, the raw samples beside it (.txt). Runs where the server had less
than 90 % of its core are flagged: a descheduled GIL holder collects samples that are not CPU.
This is the tool behind the findings in bench/FINDINGS.md; `make bench` does not run it.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

# bench/ for the harness modules, tests/ for the support code shared with the tests.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]

import _servers as S  # noqa: E402
from _harness import CLK_TCK, RAW, Cores, Server, choose_cores, proc_tree_cpu_seconds  # noqa: E402

TARGETS = {
    "hanji-django": ("hanji", S.DJANGO_PATH),
    "hanji-res": ("hanji", S.RES_PATH),
    "bare-wsgi": ("bare-wsgi", S.DJANGO_PATH),
    "bare-twisted": ("bare-twisted", S.RES_PATH),
}

# Where a sample's own (self) time lands, by the file of its innermost frame: the groups
# of the findings. Checked in order; the first pattern found in the file name wins.
GROUPS = [
    ("twisted.web HTTP (channel, parser, Request)", ("twisted/web/http.py", "twisted/web/server.py",
                                                      "twisted/web/http_headers.py", "twisted/web/_abnf.py",
                                                      "twisted/web/_newclient.py", "twisted/web/iweb.py",
                                                      "twisted/web/resource.py", "twisted/web/_responses.py")),
    ("twisted.web.wsgi bridge", ("twisted/web/wsgi.py",)),
    ("Twisted thread hand-offs (threadpool, callFromThread, blockingCallFromThread)",
     ("twisted/python/threadpool.py", "twisted/_threads/", "twisted/internet/threads.py",
      "twisted/python/context.py", "twisted/python/failure.py", "twisted/internet/defer.py")),
    ("Twisted reactor, TCP transport, logging", ("twisted/internet/", "twisted/python/", "twisted/logger/")),
    ("Hanji server (routing, channel, bridge, tracking)", ("hanji/server/", "hanji/django/bridge", "hanji/django/pool",
                                                            "hanji/core/", "hanji/_compat")),
    ("Hanji middleware and settings", ("hanji/django/",)),
    ("Django (handler, middleware, view, response)", ("django/",)),
    ("Python threading, queue, locks", ("threading.py", "queue.py", "_weakrefset.py")),
    ("other Python stdlib (io, email, urllib, logging, …)", ("/lib/python3",)),
]


# Where one request's time goes, step by step: each sample lands in the first rule whose
# thread matches and whose stack names one of the frames (substrings of "function (file)").
# Reactor-thread rules first, then the Django/WSGI worker threads.
STEPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("hand-off in: WSGI environ, request object for Django, job queued to the pool, a worker woken",
     "reactor", ("WSGIResource.render", "_WSGIResponse.__init__", "_WSGIResponse.start", "DjangoPool.submit",
                 "callInThread", "Team.do", "hanji/django/")),
    ("callbacks handed back by workers (callFromThread queue): status and headers, body write, finish",
     "reactor", ("runUntilCurrent",)),
    ("routing and request bookkeeping (Request.process: default headers, date, resource lookup, render)",
     "reactor", ("Request.process", "HanjiRequest.process")),
    ("HTTP parsing and Request allocation (dataReceived, lineReceived, headers, allContentReceived)",
     "reactor", ("dataReceived",)),
    ("socket writes (doWrite, send) and write registration", "reactor", ("doWrite", "writeSomeData")),
    ("reactor loop: epoll, waker pipe, timers, other", "reactor", ("",)),
    ("hand-off out: blockingCallFromThread / callFromThread (queue and condition per call, waker pipe "
     "write, waiting for the reactor)", "worker", ("blockingCallFromThread", "callFromThread", "wakeUp")),
    ("Django: WSGIHandler (request, middleware, view, response)", "worker", ("WSGIHandler.__call__", "(django/")),
    ("WSGI bridge in the worker (start_response, response iteration, close)", "worker",
     ("_WSGIResponse", "wsgi.py", "hanji/")),
    ("thread pool dispatch: waiting for and taking jobs (Team, ThreadWorker, Queue, Condition)", "worker", ("",)),
]


@dataclasses.dataclass
class Profile:
    """The samples of one run and the measured rates they are scaled by."""

    label: str
    rps: float
    requests: int
    cpu_seconds: float
    window: float
    total: int  # samples, idle threads excluded
    inclusive: collections.Counter[str]
    self_: collections.Counter[str]
    groups: collections.Counter[str]
    threads: collections.Counter[str]
    steps: collections.Counter[str]

    system_seconds: float = 0.0  # of cpu_seconds, in the kernel
    rate: int = 200  # py-spy samples per second

    @property
    def us_per_request(self) -> float:
        """Measured server CPU per request."""
        return 1e6 * self.cpu_seconds / max(self.requests, 1)

    switches: int = 0  # context switches of all the server's threads in the window

    @property
    def sys_us(self) -> float:
        """Measured kernel CPU per request."""
        return 1e6 * self.system_seconds / max(self.requests, 1)

    @property
    def us_per_sample(self) -> float:
        """What one sample weighs per request: the measured user CPU per request split
        by the samples (the GIL holder's Python frames)."""
        return (self.us_per_request - self.sys_us) / max(self.total, 1)

    @property
    def gil_coverage(self) -> float:
        """GIL-held samples against the user CPU time of the window (1.0: every user
        CPU moment had a GIL holder; less: the GIL was in transit between threads)."""
        user = self.cpu_seconds - self.system_seconds
        return self.total / self.rate / user if user > 0 else float("nan")


def _function(frame: str) -> str:
    """Merge the lines of one function: "render (twisted/web/server.py:123)" → "render (…/server.py)"."""
    frame = re.sub(r":\d+\)$", ")", frame)
    return re.sub(r"\((?:.*?/(?:site-packages|lib/python3\.\d+|work/main)/)", "(", frame)


def _group(frame: str) -> str:
    for name, patterns in GROUPS:
        if any(p in frame for p in patterns):
            return name
    return "other (native, unknown)"


def _step(kind: str, stack: str) -> str:
    """The STEPS label of one sample."""
    want = "reactor" if kind == "reactor thread" else "worker" if kind.startswith("worker") else "other"
    for label, thread, frames in STEPS:
        if thread == want and any(f in stack for f in frames):
            return f"{thread}: {label}"
    return "other threads (start-up, supervisor link, watchdog)"


def parse_raw(text: str) -> tuple[int, collections.Counter[str], collections.Counter[str],
                                  collections.Counter[str], collections.Counter[str], collections.Counter[str]]:
    """Read py-spy's raw (collapsed) output: one "frame;frame;… count" line per stack,
    outermost first; with ``--threads`` the first frame names the thread."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread ("):
            thread, frames = frames[0], frames[1:]
        else:
            thread = "?"
        if not frames:
            continue
        total += n
        kind = _thread_kind(thread, frames)
        threads[kind] += n
        steps[_step(kind, ";".join(frames))] += n
        for f in {_function(f) for f in frames}:
            inclusive[f] += n
        self_[_function(frames[-1])] += n
        groups[_group(frames[-1])] += n
    return total, inclusive, self_, groups, threads, steps


def _thread_kind(thread: str, frames: list[str]) -> str:
    """Name a sampled thread by what it runs: the reactor (the main thread of every server
    profiled here) or a pool worker. By the thread's name first, as py-spy sometimes
    returns only the innermost frames of a stack."""
    text = ";".join(frames[:8])
    if thread.endswith(": MainThread") or "ReactorBase.run " in text or "mainLoop" in text:
        return "reactor thread"
    if "_bootstrap" in text or re.search(r"Django|Pool|wsgi", thread):
        return "worker threads (Django / WSGI pool)"
    return thread


def _system_seconds(pid: int) -> float:
    """Return the CPU seconds ``pid`` spent in the kernel (stime, all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / CLK_TCK


def _context_switches(pid: int) -> int:
    """Return the context switches (voluntary and not) of all threads of ``pid`` so far."""
    total = 0
    for tid in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (tid / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


def profile_target(label: str, server: Server, path: str, cores: Cores, seconds: int, spy: str,
                   connections: int = 20) -> Profile:
    """Load ``server`` with wrk on ``path`` and sample it; return the scaled profile."""
    raw = RAW / f"profile-{label}.txt"
    server.start()
    try:
        wrk_seconds = seconds + 4
        load = subprocess.Popen([*cores.prefix(cores.load), "wrk", "-t1", f"-c{connections}", f"-d{wrk_seconds}s",
                                 "--latency", server.base + path], stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)  # warm: caches, pools, the GC's generations
        sw0 = _context_switches(server.pid)
        cpu0, sys0, t0 = proc_tree_cpu_seconds(server.pid), _system_seconds(server.pid), time.monotonic()
        spy_out = subprocess.run([*cores.prefix(cores.load), spy, "record", "-p", str(server.pid), "-d", str(seconds),
                                  "-r", "200", "-f", "raw", "-o", str(raw), "--nonblocking", "--threads", "--gil"],
                                 capture_output=True, text=True, timeout=seconds + 60)
        cpu1, sys1, t1 = proc_tree_cpu_seconds(server.pid), _system_seconds(server.pid), time.monotonic()
        sw1 = _context_switches(server.pid)
        stdout, _ = load.communicate(timeout=wrk_seconds + 60)
    finally:
        server.stop()
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no samples for {label}: {spy_out.stderr[-1000:]}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    rps = float(m.group(1)) if m else 0.0
    window = t1 - t0
    total, inclusive, self_, groups, threads, steps = parse_raw(raw.read_text())
    # wrk's rate over its whole run stands for the window (the server is saturated throughout).
    return Profile(label, rps, round(rps * window), cpu1 - cpu0, window, total, inclusive, self_, groups, threads,
                   steps,
                   system_seconds=sys1 - sys0, switches=sw1 - sw0)


def render(p: Profile, top: int) -> str:
    """The profile as markdown: totals, groups, threads, then functions by inclusive and self µs."""
    us, w, sys_us = p.us_per_request, p.us_per_sample, p.sys_us
    lines = [
        f"### {p.label}",
        "",
        f"{p.rps:.0f} req/s; server CPU {p.cpu_seconds:.2f} s over {p.window:.1f} s "
        f"({100 * p.cpu_seconds / p.window:.0f} % of a core) → **{us:.0f} µs of CPU per request** "
        f"({1e6 / p.rps if p.rps else float('nan'):.0f} µs of wall time per request): {us - sys_us:.0f} µs in user "
        f"space, split below by {p.total} GIL-holder samples, and {sys_us:.0f} µs in the kernel. "
        f"{p.switches / max(p.requests, 1):.1f} context switches per request (all threads). "
        + (f"The samples cover {100 * p.gil_coverage:.0f} % of the user CPU time (py-spy falls behind its rate "
           "on the shared load core, and takes none while the GIL passes between threads); the split assumes the "
           "missed moments are spread like the taken ones." if p.cpu_seconds >= 0.9 * p.window else
           "The server had less than 90 % of its core (the machine was shared), so a GIL holder was sometimes "
           "descheduled: rely on the shares, not on the sample count."),
        "",
        "| self time by group (innermost frame) | µs / request | share of CPU |",
        "|---|---|---|",
    ]
    for name, n in p.groups.most_common():
        lines.append(f"| {name} | {w * n:.1f} | {100 * w * n / us:.1f} % |")
    lines.append(f"| kernel (system calls, context switches; stime) | {sys_us:.1f} | {100 * sys_us / us:.1f} % |")
    lines += ["", "| step of a request (thread: what it does) | µs / request | share of CPU |", "|---|---|---|"]
    for label, _, _ in STEPS:
        for thread in ("reactor", "worker"):
            n = p.steps.get(f"{thread}: {label}", 0)
            if n:
                lines.append(f"| {thread}: {label} | {w * n:.1f} | {100 * w * n / us:.1f} % |")
    other = p.steps.get("other threads (start-up, supervisor link, watchdog)", 0)
    if other:
        lines.append(f"| other threads | {w * other:.1f} | {100 * w * other / us:.1f} % |")
    lines.append(f"| kernel (stime) | {sys_us:.1f} | {100 * sys_us / us:.1f} % |")
    lines += ["", "| thread holding the GIL | µs / request | share of samples |", "|---|---|---|"]
    for name, n in p.threads.most_common(6):
        lines.append(f"| {name} | {w * n:.1f} | {100 * n / p.total:.1f} % |")
    lines += ["", "| function (inclusive) | µs / request | share of samples | self µs |", "|---|---|---|---|"]
    for f, n in p.inclusive.most_common(top):
        s = p.self_.get(f, 0)
        lines.append(f"| `{f[:110]}` | {w * n:.1f} | {100 * n / p.total:.1f} % | {w * s:.1f} |")
    lines += ["", "| function (self) | self µs / request | share of samples |", "|---|---|---|"]
    for f, n in p.self_.most_common(top):
        lines.append(f"| `{f[:110]}` | {w * n:.1f} | {100 * n / p.total:.1f} % |")
    return "\n".join(lines) + "\n"


def _factory(server: str, cores: Cores, patches: str, hanji_args: list[str], tree: str) -> Callable[[], Server]:
    if server == "hanji":
        return lambda: S.hanji(cores, "profile-hanji", patches=patches, extra=hanji_args, tree=tree)
    if server == "bare-twisted":
        return lambda: S.bare_twisted(cores)
    if server == "bare-wsgi":
        return lambda: S.bare_wsgi(cores)
    raise SystemExit(f"profile: unknown server {server!r}; choose hanji, bare-twisted or bare-wsgi")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all), or SERVER PATH")
    p.add_argument("--patches", default="", help="Hanji fixes from servers/hanji_patched.py")
    p.add_argument("--hanji-args", default="", help='extra `hanji serve` options, e.g. "--http twisted"')
    p.add_argument("--tree", default="", help="run the hanji package of this source tree, e.g. an earlier "
                   "commit unpacked with `git archive COMMIT hanji | tar -x -C DIR`")
    p.add_argument("--seconds", type=int, default=8, help="sampling window per target (default 8)")
    p.add_argument("--top", type=int, default=30, help="functions listed per table (default 30)")
    p.add_argument("--loop", action="store_true", help="also time WSGIHandler in a loop (bench/django_loop.py)")
    p.add_argument("--output", type=Path, help="also write the markdown report here")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profile: py-spy is not installed (it is in the bench extra: `pip install -e '.[bench]'`).",
              file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("profile: wrk is not installed; `apt-get install wrk`.", file=sys.stderr)
        return 2
    RAW.mkdir(parents=True, exist_ok=True)
    cores = choose_cores()
    hanji_args = args.hanji_args.split()
    jobs: list[tuple[str, str, str]] = []  # label, server, path
    names = args.targets or ([] if args.loop else list(TARGETS))
    if len(names) == 2 and names[1].startswith("/"):
        jobs.append((f"{names[0]}{names[1].replace('/', '-')}", names[0], names[1]))
    else:
        for name in names:
            if name not in TARGETS:
                print(f"profile: unknown target {name!r}; choose from {', '.join(TARGETS)} or give SERVER PATH.",
                      file=sys.stderr)
                return 2
            jobs.append((name, *TARGETS[name]))
    parts = []
    for label, server, path in jobs:
        suffix = "".join(f" {x}" for x in (args.patches, args.hanji_args, args.tree and f"(tree {args.tree})") if x)
        print(f"profile: {label} ({server} {path}{suffix}) …", file=sys.stderr, flush=True)
        prof = profile_target(label, _factory(server, cores, args.patches, hanji_args, args.tree)(), path, cores,
                              args.seconds, spy)
        prof.label = f"{label}: `GET {path}` on {server}{suffix}"
        text = render(prof, args.top)
        (RAW / f"profile-{label}.md").write_text(text)
        print(text, flush=True)
        parts.append(text)
    if args.loop:
        import _django_loop

        loop = _django_loop.measure(cores)
        text = _django_loop.describe(loop)
        print(text, flush=True)
        parts.append(text)
    if args.output:
        args.output.write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
