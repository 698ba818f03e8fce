"""The supervisor's loop; supervisor process, main thread (no Twisted reactor, no Django).

:func:`run` is ``hanji serve --workers N`` (or ``--reload``): prepare once what the
workers share (migrations, token, secret key, the bound socket, the bus relay),
then :class:`Supervisor` keeps the wanted number of workers alive until SIGTERM or
SIGINT. Signals only set flags (Python runs handlers in the main thread, between
two steps of the loop) and wake the loop through ``signal.set_wakeup_fd``; the loop
waits on the workers' pipes with :mod:`selectors`, never longer than half a second.

    SIGTERM, SIGINT   drain every worker (SIGTERM to each), exit 0 once all exited;
                      the second one kills those still draining (SIGKILL)
    SIGHUP            rolling restart: start a new worker, wait until it is ready,
                      then drain an old one; one worker at a time
    SIGTTIN, SIGTTOU  one worker more, one less (never fewer than one)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hanji import _config, _secretfile
from hanji.supervisor import _listen, _logs
from hanji.supervisor._worker import READY, Worker, WorkerState, describe_exit

log = logging.getLogger("hanji.supervisor")

# A worker sends its first heartbeat once its reactor runs, after Django's start-up
# and the applets' imports: until then this longer deadline applies.
BOOT_TIMEOUT = 120.0
# Seconds between the stack dump (SIGUSR2) and the SIGKILL of a silent worker.
DUMP_GRACE = 0.5
# Back-off before restarting a worker that died: doubled per death in a row, capped.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)


@dataclasses.dataclass
class Plan:
    """What the supervisor needs from the command line, checked."""

    host: str
    port: int
    workers: int
    worker_timeout: float
    drain_timeout: float
    ready_file: Path | None
    worker_argv: list[str]
    env: dict[str, str]


class Supervisor:
    """Keep ``plan.workers`` workers serving ``sock``; supervisor process, main thread."""

    def __init__(self, plan: Plan, sock: socket.socket, url: str, token: str | None) -> None:
        self.plan = plan
        self.sock = sock
        self.url = url
        self.token = token
        self.wanted = plan.workers
        self.generation = 0  # raised by SIGHUP: workers of older generations are replaced
        self.workers: list[Worker] = []
        self._next_id = 1
        self._deaths = 0  # unexpected deaths since a worker last became ready
        self._respawn_at = 0.0
        self._booted = False  # all the first workers became ready once
        self._stopping = False
        self.exit_code = 0
        self._signals: list[int] = []
        self._selector = selectors.DefaultSelector()

    # -- signals --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Queue ``signum`` for the loop; runs between two steps of the main thread."""
        self._signals.append(signum)

    def _install_signals(self) -> tuple[socket.socket, socket.socket]:
        """Route the handled signals to the loop; return the wake-up socket pair."""
        wake_r, wake_w = socket.socketpair()
        for s in (wake_r, wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        for signum in _HANDLED:
            signal.signal(signum, self._on_signal)
        self._selector.register(wake_r, selectors.EVENT_READ, None)
        return wake_r, wake_w

    def _handle_signals(self) -> None:
        """Act on the signals received since the last step."""
        pending, self._signals = self._signals, []
        hup = False
        for signum in pending:
            name = signal.Signals(signum).name
            if signum in (signal.SIGTERM, signal.SIGINT):
                if self._stopping:
                    # Asked twice (Ctrl-C again): stop now, cutting what is in flight.
                    left = self._alive()
                    log.warning("%s again: killing the %d worker(s) still draining (SIGKILL).", name, len(left))
                    for worker in left:
                        worker.kill(worker.reason or "shutdown")
                else:
                    log.info("%s: draining %d worker(s), then exiting.", name, len(self._alive()))
                    self.stop()
            elif self._stopping:
                continue
            elif signum == signal.SIGHUP:
                hup = True
            elif signum == signal.SIGTTIN:
                self.wanted += 1
                log.info("SIGTTIN: %d worker(s) wanted.", self.wanted)
            elif signum == signal.SIGTTOU:
                if self.wanted > 1:
                    self.wanted -= 1
                    log.info("SIGTTOU: %d worker(s) wanted.", self.wanted)
                else:
                    log.info("SIGTTOU ignored: one worker is the fewest.")
        if hup and not self._stopping:
            self._restart()

    def _restart(self) -> None:
        """Begin a rolling restart: every worker started before now is replaced.

        SIGHUPs coalesce: those of one step make one restart, and one during a
        restart (``--reload`` makes each worker send one) makes the restart in
        progress go on to the workers it started too, one further pass at most,
        never one per signal."""
        counted = self._counted()
        if any(w.generation < self.generation for w in counted):
            log.info("SIGHUP during a rolling restart: it goes on until the workers started before this "
                     "signal are replaced too.")
        else:
            log.info("SIGHUP: rolling restart of %d worker(s), one at a time; the socket stays bound.",
                     len(counted))
        self.generation += 1

    # -- workers --------------------------------------------------------------------------

    def _alive(self) -> list[Worker]:
        return [w for w in self.workers if w.state is not WorkerState.EXITED]

    def _counted(self) -> list[Worker]:
        return [w for w in self.workers if w.counted]

    def _spawn(self) -> Worker:
        """Start one worker of the current generation."""
        worker_id, self._next_id = self._next_id, self._next_id + 1
        env = dict(self.plan.env, HANJI_WORKER_ID=str(worker_id))
        worker = Worker(worker_id, self.generation, self.plan.worker_argv, env, self.sock.fileno())
        self.workers.append(worker)
        self._selector.register(worker.pipe, selectors.EVENT_READ, worker)
        log.info("Worker %d (pid %d) started.", worker.id, worker.pid)
        return worker

    def _stop_worker(self, worker: Worker, reason: str) -> None:
        """Drain ``worker`` (SIGTERM), SIGKILL it if it outlives the drain."""
        deadline = time.monotonic() + 2 * self.plan.drain_timeout + 10.0
        worker.terminate(reason, deadline)
        log.info("Worker %d (pid %d) drains and stops (%s).", worker.id, worker.pid, reason)

    def stop(self) -> None:
        """Begin the shutdown: drain every worker; the loop ends once all exited."""
        self._stopping = True
        for worker in self._counted():
            self._stop_worker(worker, "shutdown")

    def _read(self, worker: Worker) -> None:
        """Take in what ``worker`` wrote on its pipe."""
        data = worker.read()
        if READY in data and worker.state is WorkerState.BOOTING:
            worker.move(WorkerState.READY)
            self._deaths = 0
            log.info("Worker %d (pid %d) ready.", worker.id, worker.pid)

    def _reap(self) -> None:
        """Collect exited workers; plan the restart of those that died unasked."""
        for worker in self._alive():
            if worker.proc.poll() is None:
                continue
            was = worker.state
            self._selector.unregister(worker.pipe)
            code = worker.poll()
            assert code is not None
            how = describe_exit(code)
            if was is WorkerState.STOPPING:
                log.info("Worker %d (pid %d) %s (%s).", worker.id, worker.pid, how, worker.reason)
                if worker.reason.startswith("no heartbeat"):
                    self._plan_respawn()
                continue
            if self._stopping:
                log.info("Worker %d (pid %d) %s.", worker.id, worker.pid, how)
                continue
            if not self._booted and was is WorkerState.BOOTING:
                log.error("Worker %d (pid %d) %s before it was ready: see its errors above. "
                          "Hanji stops; fix the cause and start it again.", worker.id, worker.pid, how)
                self.exit_code = 1
                self.stop()
                continue
            delay = self._plan_respawn()
            log.error("Worker %d (pid %d) %s; another starts in %.1f s.", worker.id, worker.pid, how, delay)
        self.workers = [w for w in self.workers if w.state is not WorkerState.EXITED]

    def _plan_respawn(self) -> float:
        """Count a death and return the back-off before the next start."""
        delay = 0.0 if self._deaths == 0 else min(BACKOFF_FIRST * 2 ** (self._deaths - 1), BACKOFF_MAX)
        self._deaths += 1
        self._respawn_at = time.monotonic() + delay
        return delay

    def _check_heartbeats(self, now: float) -> None:
        """Kill workers whose reactor stopped beating; SIGKILL overdue stops."""
        for worker in self._alive():
            if worker.state is WorkerState.STOPPING:
                if worker.kill_at is not None and now >= worker.kill_at:
                    log.warning("Worker %d (pid %d) still runs past its deadline (%s): SIGKILL.",
                                worker.id, worker.pid, worker.reason)
                    worker.kill(worker.reason)
                continue
            limit = self.plan.worker_timeout if worker.heard else max(self.plan.worker_timeout, BOOT_TIMEOUT)
            silent = now - worker.last_message
            if silent > limit:
                log.error("Worker %d (pid %d) sent no heartbeat for %.1f s (--worker-timeout %g): its "
                          "reactor is blocked? Its threads' stacks follow on stderr; it is killed and "
                          "replaced.", worker.id, worker.pid, silent, self.plan.worker_timeout)
                worker.kill(f"no heartbeat for {silent:.1f} s", after=DUMP_GRACE)

    def _reconcile(self, now: float) -> None:
        """Start or stop workers until the wanted number of the current generation serve."""
        if self._stopping:
            return
        counted = self._counted()
        ready = [w for w in counted if w.state is WorkerState.READY]
        booting = [w for w in counted if w.state is WorkerState.BOOTING]
        old = [w for w in counted if w.generation < self.generation]
        # A surplus of ready workers (SIGTTOU, or a replacement that became ready in a
        # rolling restart): drain one, an old one first, else the oldest.
        if len(counted) > self.wanted and len(ready) > self.wanted:
            victim = min(ready, key=lambda w: (w.generation, w.started))
            replaced = "replaced" if victim.generation < self.generation else "one worker less wanted"
            self._stop_worker(victim, replaced)
            return
        if len(counted) < self.wanted:
            if now >= self._respawn_at:
                for _ in range(self.wanted - len(counted)):
                    self._spawn()
            return
        if old and not booting and len(counted) == self.wanted and now >= self._respawn_at:
            # The replacement; an old one drains once it is ready. A replacement that
            # dies before (new code that fails) leaves the old ones serving, and the
            # next try waits for the back-off.
            self._spawn()

    def _next_wake(self, now: float) -> float:
        """Return how long the loop may wait for a pipe or a signal."""
        wake = now + 0.5  # also the log rotation check (_logs.rotate_if_needed)
        if self._respawn_at > now:
            wake = min(wake, self._respawn_at)
        for worker in self._alive():
            if worker.kill_at is not None:
                wake = min(wake, worker.kill_at)
        return max(0.0, wake - now)

    def _maybe_ready(self) -> None:
        """Once all the first workers serve: the ready file and the banner."""
        if self._booted or self._stopping:
            return
        counted = self._counted()
        if len(counted) < self.wanted or any(w.state is not WorkerState.READY for w in counted):
            return
        self._booted = True
        pids = ", ".join(str(w.pid) for w in counted)
        log.info("Hanji serves %s/ with %d worker(s) (pids %s; supervisor pid %d).",
                 self.url, len(counted), pids, os.getpid())
        print(f"Hanji serves {self.url}/ with {len(counted)} worker(s), pids {pids} "
              f"(supervisor pid {os.getpid()}; Ctrl-C to stop)", file=sys.stderr, flush=True)
        if self.token:
            # Printed, not logged: the token stays out of hanji.log.
            print(f"    open {self.url}/?token={self.token}\n    or send the header "
                  f"'X-Hanji-Token: {self.token}'", file=sys.stderr, flush=True)
        if self.plan.ready_file is not None:
            from hanji.cli import _write_ready_file

            _write_ready_file(self.plan.ready_file, SimpleNamespace(url=self.url, token=self.token))

    def loop(self) -> int:
        """Run until every worker exited after SIGTERM/SIGINT; return the exit code."""
        wake_r, wake_w = self._install_signals()
        try:
            while True:
                self._handle_signals()
                self._reap()
                now = time.monotonic()
                self._check_heartbeats(now)
                self._reconcile(now)
                self._maybe_ready()
                _logs.rotate_if_needed()
                if self._stopping and not self._alive():
                    return self.exit_code
                for key, _ in self._selector.select(self._next_wake(time.monotonic())):
                    if key.data is None:
                        try:
                            while wake_r.recv(512):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._read(key.data)
        finally:
            signal.set_wakeup_fd(-1)
            for s in (wake_r, wake_w):
                s.close()
            self._selector.close()


# -- what the workers share -----------------------------------------------------------------


def _migrate(data: Path, applet_args: list[str] | None, env: dict[str, str]) -> bool:
    """Apply the migrations once for all workers (``hanji manage migrate`` in a child
    process, so the supervisor imports neither Django nor the applets); return False
    if it failed."""
    command = [sys.executable, "-m", "hanji", "manage", "--data", str(data)]
    for d in applet_args or ():
        command += ["--applets", d]
    code = subprocess.call([*command, "migrate"], env=env, stdin=subprocess.DEVNULL)
    if code != 0:
        log.error("Applying the migrations failed (hanji manage migrate %s, see above); no worker "
                  "starts. Fix the migration, or run `hanji manage migrate` yourself and start with "
                  "--no-migrate.", describe_exit(code))
        return False
    log.info("Migrations applied, once for all workers.")
    return True


def _start_bus(bus: str | None) -> tuple[str | None, Callable[[], None]]:
    """Return the bus URL the workers use and how to stop what serves it: ``bus``
    (``--bus`` or HANJI_BUS) as given, else a relay on a unix socket in a private
    temporary directory, served by a thread of the supervisor."""
    if bus:
        return bus, lambda: None
    from hanji.server.bus.relay import start_relay

    directory = tempfile.mkdtemp(prefix="hanji-bus-")
    path = os.path.join(directory, "bus.sock")
    try:
        relay = start_relay(path)
    except Exception as exc:
        shutil.rmtree(directory, ignore_errors=True)
        log.warning("The bus relay could not start on %s (%s): the workers start without a shared "
                    "bus; set --bus redis://… to share broadcasts.", path, exc)
        return None, lambda: None

    def stop() -> None:
        try:
            relay.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    log.info("Bus relay on %s (the workers' broadcasts go through the supervisor).", path)
    return f"unix://{path}", stop


def _share_secret_key(data: Path) -> bool:
    """Make sure every worker signs with one Django secret key: ``HANJI_SECRET_KEY``
    as set, else the key kept in the data dir, made here once before any worker
    starts (the workers read the file; the key stays out of their environment).
    Return False, having logged why, if the file cannot be read or made."""
    if _config.fixed_secret_key():
        return True
    try:
        _secretfile.load_or_create(data)
    except _secretfile.SecretKeyFileError as exc:
        log.error("%s No worker starts.", exc)
        return False
    kept = _secretfile.path(data)
    if _config.redis_bus_url():
        log.warning("HANJI_SECRET_KEY is not set: this host signs sessions and CSRF tokens with its own "
                    "key (%s), which the other hosts sharing this Redis and database refuse. Set the "
                    "same HANJI_SECRET_KEY on every host.", kept)
    else:
        log.info("Django's secret key: the one kept in %s (HANJI_SECRET_KEY is not set), for every "
                 "worker and across restarts.", kept)
    return True


def _worker_argv(args: Any) -> list[str]:
    """Return the ``hanji`` arguments of a worker: those of this command, without
    the migrations (applied here once)."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    return [*argv, "--no-migrate"]


def run(args: Any) -> int:
    """Run ``hanji serve --workers N`` (``args`` parsed by hanji.cli, logging
    configured); return the exit code. Supervisor process, main thread."""
    from hanji.server.security import access

    workers = 1 if args.workers is None else args.workers  # checked by hanji.cli.serve
    data = _config.data_dir(args.data)
    env = dict(os.environ, HANJI_SUPERVISOR_PID=str(os.getpid()), HANJI_DATA=str(data))
    if args.debug:
        env["HANJI_DEBUG"] = "1"
    if not _share_secret_key(data):
        return 1
    if not args.no_migrate and not _migrate(data, args.applets, env):
        return 1
    if args.no_migrate:
        log.info("--no-migrate: the migrations are not applied (run `hanji manage migrate` first).")
    token = access.choose_token(args.host, args.no_token)
    if args.no_token:
        from hanji.cli import _warn_no_token

        _warn_no_token(args.host)
    if token:
        env["HANJI_TOKEN"] = token
    try:
        sock = _listen.bind(args.host, args.port)
    except OSError as exc:
        log.error("Cannot listen on %s:%s: %s. Pick another port with --port.", args.host, args.port, exc)
        return 1
    url = _listen.url(args.host, sock)
    bus, stop_bus = _start_bus(_config.bus_url())
    if bus:
        env["HANJI_BUS"] = bus
    plan = Plan(host=args.host, port=sock.getsockname()[1], workers=workers,
                worker_timeout=args.worker_timeout, drain_timeout=args.drain_timeout,
                ready_file=Path(args.ready_file) if args.ready_file else None,
                worker_argv=_worker_argv(args), env=env)
    log.info("Supervisor (pid %d) listens on %s:%d; starting %d worker(s).",
             os.getpid(), args.host, plan.port, workers)
    supervisor = Supervisor(plan, sock, url, token)
    try:
        code = supervisor.loop()
    finally:
        sock.close()
        stop_bus()
    log.info("Hanji stopped (supervisor pid %d).", os.getpid())
    return code
