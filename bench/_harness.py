"""Processes, CPU pinning, wrk runs and statistics for bench/run.py.

Everything here runs in the harness process (pinned to the load generator's core).
Each server is its own process pinned to the server core; wrk and the Python load
clients are pinned to the other core, so that the two never compete for one CPU.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from support.polling import WaitTimeout, wait_until
from support.server import wait_ready

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RAW = BENCH / "raw"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- cores ------------------------------------------------------------------------


# Every core this process may use, read at import, before run.py pins the harness itself
# to the load core: a server started "not pinned" would otherwise inherit that one core.
ALL_CORES = sorted(os.sched_getaffinity(0))


@dataclasses.dataclass(frozen=True)
class Cores:
    """Which core the servers run on and which the load generators use."""

    server: int | None
    load: int | None

    @property
    def pinned(self) -> bool:
        return self.server is not None

    def prefix(self, core: int | None) -> list[str]:
        """Return the command prefix that runs a process on ``core``, or on every
        core (``None``: a server free to use both, not the harness's own core)."""
        if not shutil.which("taskset"):
            return []
        if core is None:
            return ["taskset", "-c", ",".join(map(str, ALL_CORES))] if len(ALL_CORES) > 1 else []
        return ["taskset", "-c", str(core)]

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 usable cores or no taskset)"
        return f"server on core {self.server}, load generator on core {self.load} (taskset)"


def choose_cores() -> Cores:
    """Return server core = lowest usable core, load core = the next one."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2 or not shutil.which("taskset"):
        return Cores(None, None)
    return Cores(usable[0], usable[1])


# -- processes ----------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used so far by process ``pid`` (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_children(pid: int) -> list[int]:
    """Return the live descendants of ``pid`` (workers of gunicorn, granian, a supervisor)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def proc_tree_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds used so far by ``pid`` and its live descendants (a server
    with worker processes counts whole; a child that exited meanwhile is not counted)."""
    total = proc_cpu_seconds(pid)
    for child in proc_children(pid):
        try:
            total += proc_cpu_seconds(child)
        except (OSError, IndexError, ValueError):
            pass
    return total


def proc_rss_kb(pid: int) -> int:
    """Return the resident set size of ``pid`` in kB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB


def proc_threads(pid: int) -> int:
    """Return the number of threads of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/task"))


class Server:
    """One server process, started pinned, stopped by its own pid. Ready once GET
    ``ready_path`` answers 200, or, with ``ready_file`` (Hanji's ``--ready-file``), once
    the server wrote it (tests/support/server.py); its URL then gives the port."""

    _count = 0

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        cores: Cores,
        port: int | None,
        ready_path: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready_file: Path | None = None,
    ) -> None:
        self.name = name
        self.cmd = [*cores.prefix(cores.server), *cmd]
        self.port = port
        self.ready_path = ready_path
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.cwd = cwd or ROOT
        self.ready_file = ready_file
        Server._count += 1
        self.log_path = RAW / "servers" / f"{Server._count:02d}-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read(2_000_000).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 60.0) -> Server:
        """Start the process and wait until it is ready; raise RuntimeError, with the
        end of its log, if it exits or times out first."""
        t0 = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)  # an earlier run's, with an old port
        self.proc = subprocess.Popen(
            self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
        )
        try:
            if self.ready_file is not None:
                self.port = urlsplit(wait_ready(self.ready_file, self.proc, self._log_tail, timeout).url).port
            else:
                wait_until(self._answers, timeout, "not ready")
        except WaitTimeout:
            self.stop()
            raise RuntimeError(f"{self.name} was not ready within {timeout}s:\n{self._log_tail()}") from None
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _log_tail(self) -> str:
        """Return the end of the server's log, for error messages."""
        return self.log_text()[-3000:]

    def _answers(self) -> bool:
        """Return True once GET ``ready_path`` answers 200; raise if the process exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self._log_tail()}")
        return http_status(self.base + self.ready_path, timeout=2) == 200

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only this server's own pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def http_status(url: str, timeout: float = 5.0) -> int | None:
    """Return the HTTP status of GET ``url``, or None if it cannot connect."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, ValueError):
        return None


# -- wrk ----------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    """One wrk run, with the server's CPU use measured around it."""

    label: str
    rps: float
    requests: int
    seconds: float
    p50: float  # milliseconds
    p75: float
    p90: float
    p99: float
    errors: int  # socket errors of any kind
    non2xx: int
    server_cpu: float | None = None  # CPU seconds used by the server during the run
    raw_path: str = ""

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.non2xx == 0 and self.requests > 0

    @property
    def cpu_share(self) -> float | None:
        """Fraction of one core the server used during the run."""
        if self.server_cpu is None or not self.seconds:
            return None
        return self.server_cpu / self.seconds

    @property
    def rps_per_cpu(self) -> float | None:
        """Requests per CPU-second of the server: robust to a noisy neighbour."""
        if not self.server_cpu:
            return None
        return self.requests / self.server_cpu


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(text: str, label: str = "") -> WrkResult:
    """Read requests/s, latency percentiles and errors from wrk --latency output."""
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M)}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    requests, seconds = (int(m.group(1)), _ms(m.group(2) + m.group(3)) / 1000.0) if m else (0, 0.0)
    rps_m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        label=label,
        rps=float(rps_m.group(1)) if rps_m else 0.0,
        requests=requests,
        seconds=seconds,
        p50=pct.get(50, float("nan")),
        p75=pct.get(75, float("nan")),
        p90=pct.get(90, float("nan")),
        p99=pct.get(99, float("nan")),
        errors=errors,
        non2xx=int(non.group(1)) if non else 0,
    )


class Wrk:
    """Runs wrk on the load core and saves each output under bench/raw/."""

    def __init__(self, cores: Cores, *, connections: int = 20, duration: float = 4.0) -> None:
        self.cores = cores
        self.connections = connections
        self.duration = duration
        self.count = 0

    def command(self, url: str, *, connections: int | None = None, duration: float | None = None,
                script: Path | None = None, timeout: float = 10.0) -> list[str]:
        cmd = [*self.cores.prefix(self.cores.load), "wrk", "-t1", f"-c{connections or self.connections}",
               f"-d{max(1, round(duration or self.duration))}s", f"--timeout={max(1, round(timeout))}s", "--latency"]
        if script is not None:
            cmd += ["-s", str(script)]
        return [*cmd, url]

    def run(self, label: str, url: str, server: Server | None = None, **kw: Any) -> WrkResult:
        """Run wrk against ``url``; measure ``server``'s CPU seconds around it."""
        self.count += 1
        cmd = self.command(url, **kw)
        cpu0 = proc_tree_cpu_seconds(server.pid) if server else None
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=(kw.get("duration") or self.duration) + 60)
        cpu1 = proc_tree_cpu_seconds(server.pid) if server else None
        raw = RAW / "wrk" / f"{self.count:03d}-{_slug(label)}.txt"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(" ".join(cmd) + "\n\n" + out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}) for {label}: {out.stderr.strip()}")
        result = parse_wrk(out.stdout, label)
        if cpu0 is not None and cpu1 is not None:
            result.server_cpu = cpu1 - cpu0
        result.raw_path = str(raw.relative_to(BENCH))
        return result

    def start_background(self, label: str, url: str, **kw: Any) -> tuple[subprocess.Popen[str], Path]:
        """Start wrk without waiting (a background load); return the process and its raw file."""
        self.count += 1
        raw = RAW / "wrk" / f"{self.count:03d}-{_slug(label)}.txt"
        raw.parent.mkdir(parents=True, exist_ok=True)
        f = open(raw, "w")
        f.write(" ".join(self.command(url, **kw)) + "\n\n")
        f.flush()
        proc = subprocess.Popen(self.command(url, **kw), stdout=f, stderr=subprocess.STDOUT, text=True)
        return proc, raw


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


# -- statistics -------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and v == v]
    return statistics.median(vals) if vals else None


def pair_ratios(a: Sequence[float | None], b: Sequence[float | None]) -> list[float]:
    """Return a[i] / b[i] for each pair i (runs taken side by side)."""
    return [x / y for x, y in zip(a, b) if x is not None and y]


def loadavg() -> str:
    """Return the 1-minute load average (a noisy-neighbour indicator)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def other_busy_processes(exclude: set[int], threshold: float = 5.0, window: float = 1.0) -> list[str]:
    """Return the processes outside ``exclude`` that used more than ``threshold`` % of
    a CPU during ``window`` seconds (what else was running on the machine)."""
    def snapshot() -> dict[int, tuple[float, str]]:
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cpu = proc_cpu_seconds(pid)
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except (OSError, IndexError, ValueError):
                continue
            out[pid] = (cpu, name)
        return out

    a = snapshot()
    time.sleep(window)
    b = snapshot()
    busy = []
    for pid, (cpu, name) in b.items():
        if pid in exclude or pid not in a:
            continue
        share = 100.0 * (cpu - a[pid][0]) / window
        if share >= threshold:
            busy.append(f"{name}[{pid}] {share:.0f}%")
    return busy


def fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:{spec}}{suffix}"
