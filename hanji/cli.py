"""The ``hanji`` command: ``serve``, ``startapplet``, ``export`` and ``manage``."""

from __future__ import annotations

import argparse
import gc
import importlib.util
import keyword
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hanji import _config, _logfile

log = logging.getLogger("hanji")


def _configure_logging(data_dir: Path, debug: bool, max_bytes: int = _logfile.DEFAULT_MAX_BYTES,
                       backups: int = _logfile.DEFAULT_BACKUPS, worker: bool = False) -> None:
    """Log to stderr and to ``hanji.log`` in the data dir (rotated at ``max_bytes``,
    ``backups`` old files kept, written by a listener thread off the reactor). A
    ``worker`` of a supervisor appends only: its supervisor rotates the file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("hanji").setLevel(logging.DEBUG if debug else logging.INFO)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(_logfile.FORMAT))
    if worker:
        from hanji.supervisor._logs import open_worker_log

        queued = open_worker_log(data_dir / "hanji.log")
    else:
        queued = _logfile.open_log_file(data_dir / "hanji.log", max_bytes, backups)
    for handler in (stderr, queued):
        root.addHandler(handler)
    # Twisted's own log (access log, unhandled errors) into the same handlers.
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    observer: Any = STDLibLogObserver(name="twisted")
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def _data_dir(arg: str | None) -> Path:
    from hanji.django.setup import resolve_data_dir

    return resolve_data_dir(arg)


def _freeze_heap(server: Any) -> None:
    """Move the start-up heap out of the cyclic GC's sight; reactor thread, once.

    Each older-generation collection walks every long-lived object; a Django request
    makes enough garbage to trigger them often. Freezing what exists once the applets
    are up made a trivial Django view ~10 % faster (bench/FINDINGS.md, E). Only under
    `hanji serve`: in a kernel the heap is the user's. An applet deactivated for good
    stays uncollected until the process exits, a bounded, one-time cost.
    """
    # The full collection blocks the reactor on purpose, once: not a stall to report.
    server.watchdog.stop()
    try:
        gc.collect()
        gc.freeze()
    finally:
        server.watchdog.start()


# Seconds the process waits, after the reactor stopped, for threads that applets
# started (non-daemon threads would keep it alive for ever) before it exits anyway.
EXIT_GRACE = 2.0


def _exit_despite_threads(code: int, grace: float = EXIT_GRACE) -> None:
    """End the process with ``code`` once the reactor stopped: wait up to ``grace``
    seconds for threads still running, name those left in the log, and exit even if
    they are non-daemon threads that applets started (a plain ``threading.Thread``
    started from a reactor callback inherits the main thread's non-daemon flag).
    Main thread, after ``reactor.run()`` returned."""
    import os
    import threading
    import time

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate()
            if t is not threading.current_thread() and not t.daemon and t.is_alive()]
    if left:
        log.warning("Threads still running after the shutdown: %s; exiting anyway (an applet "
                    "should stop its own threads in on_deactivate).", ", ".join(sorted(left)))
    if not left:
        return  # a normal exit: atexit handlers run (logging.shutdown writes the log out)
    logging.shutdown()  # write out the queued log records
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _write_ready_file(path: Path, server: Any) -> None:
    """Write ``{"url", "token", "pid"}`` as JSON to ``path`` once the server listens
    and its applets are activated (``--ready-file``), atomically and readable by the
    owner only (it holds the token); reactor thread, once (a small local write)."""
    import json
    import os

    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": server.url, "token": server.token, "pid": os.getpid()}, f)
    os.replace(tmp, path)


def _warn_no_token(host: str) -> None:
    """Say loudly, in the log and on stderr, that the site is open to anyone."""
    from hanji.server.security import access

    who = "this machine's users and programs" if access.is_loopback(host) else "anyone who can reach it"
    message = (f"--no-token: Hanji on {host} requires NO access token; {who} can use every applet, "
               "its data and its Django views. Drop --no-token unless something else guards the port.")
    log.warning(message)
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def _limits(args: argparse.Namespace) -> Any:
    """Return the HTTP limits given on the command line (0 turns a timeout off)."""
    from hanji.server.http.limits import Limits

    return Limits(
        max_body=args.max_body, max_headers=args.max_headers, max_head_size=args.max_head_size,
        idle_timeout=args.idle_timeout or None, header_timeout=args.header_timeout or None,
        body_timeout=args.body_timeout or None, body_min_rate=args.body_min_rate,
        max_output=args.max_output,
    )


def _add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of the worker processes and the migrations to ``hanji serve``."""
    g = p.add_argument_group("workers", "several worker processes on one socket, under a supervisor "
                             "(README: Running in production)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="serve with N worker processes under a supervising process that binds the "
                        "socket, applies the migrations once, restarts dead or silent workers; SIGHUP: "
                        "rolling restart, SIGTTIN/SIGTTOU: one worker more/less (default: one process, "
                        "no supervisor)")
    g.add_argument("--worker-timeout", type=float, default=_config.DEFAULT_WORKER_TIMEOUT, metavar="S",
                   help="kill and replace a worker whose reactor sent no heartbeat for S seconds "
                        f"(default {_config.DEFAULT_WORKER_TIMEOUT:g})")
    g.add_argument("--no-migrate", action="store_true",
                   help="do not apply the migrations at start (run `hanji manage migrate` first, once)")
    g.add_argument("--worker-link", metavar="FDS", help=argparse.SUPPRESS)


def _add_limit_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of the HTTP limits and the Django queue to ``hanji serve``."""
    from hanji.server.http.limits import Limits

    d = Limits()
    g = p.add_argument_group("limits", "HTTP limits (answered with 413, 414, 431, 408 or 503)")
    g.add_argument("--max-body", type=int, default=d.max_body, metavar="BYTES",
                   help=f"largest request body; a resource's max_body overrides it (default {d.max_body})")
    g.add_argument("--max-headers", type=int, default=d.max_headers, metavar="N",
                   help=f"most header fields in a request (default {d.max_headers})")
    g.add_argument("--max-head-size", type=int, default=d.max_head_size, metavar="BYTES",
                   help=f"most bytes in the request line and headers (default {d.max_head_size})")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="S",
                   help=f"close a keep-alive connection idle this long; 0: never (default {d.idle_timeout:g})")
    g.add_argument("--header-timeout", type=float, default=d.header_timeout, metavar="S",
                   help="a request head must arrive in full within S of its first byte; 0: no limit "
                        f"(default {d.header_timeout:g})")
    g.add_argument("--body-timeout", type=float, default=d.body_timeout, metavar="S",
                   help="a body must bring --body-min-rate bytes/s over every S seconds; 0: no limit "
                        f"(default {d.body_timeout:g})")
    g.add_argument("--body-min-rate", type=int, default=d.body_min_rate, metavar="BYTES",
                   help=f"see --body-timeout (default {d.body_min_rate} bytes/s)")
    g.add_argument("--max-output", type=int, default=d.max_output, metavar="BYTES",
                   help="unsent answer bytes on one connection above which its next pipelined "
                        f"request waits for the client to read (default {d.max_output})")
    g.add_argument("--django-queue", type=int, default=100, metavar="N",
                   help="Django requests that may wait for a worker; more get 503 (default 100)")


def _worker_link(args: argparse.Namespace) -> tuple[int, int] | None:
    """Return ``(listen_fd, pipe_fd)`` when this process is a worker of a supervisor
    (``--worker-link``, set by the supervisor), else None."""
    if args.worker_link is None:
        return None
    from hanji.supervisor.link import parse

    return parse(args.worker_link)


def serve(args: argparse.Namespace) -> int:
    """Run the server with the reactor in the main thread until Ctrl-C or SIGTERM."""
    from hanji import _config, _threads
    from hanji.django import setup as django_setup

    try:
        limits = _limits(args)
        if args.django_queue < 0:
            raise ValueError(f"--django-queue must be 0 or more, not {args.django_queue}.")
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be 1 or more, not {args.workers}.")
        if args.worker_timeout <= 0:
            raise ValueError(f"--worker-timeout must be more than 0, not {args.worker_timeout:g}.")
    except ValueError as exc:
        print(f"hanji serve: {exc}", file=sys.stderr)
        return 2
    if args.reload:
        from hanji.server.reload import WatchfilesMissing, require_watchfiles

        try:
            require_watchfiles()
        except WatchfilesMissing as exc:
            print(f"hanji serve --reload: {exc}", file=sys.stderr)
            return 2
    data = _data_dir(args.data)
    # Debug mode: --debug, or HANJI_DEBUG=1 in the environment (the test suite's default).
    try:
        debug = bool(args.debug or _config.debug())
    except ValueError as exc:
        print(f"hanji serve: {exc}", file=sys.stderr)
        return 2
    try:
        _configure_logging(data, debug, args.log_max_bytes, args.log_backups,
                           worker=args.worker_link is not None)
    except ValueError as exc:
        print(f"hanji serve: {exc}", file=sys.stderr)
        return 2
    _threads.set_debug(debug)
    if args.bus is not None:
        # Through the environment, so that a supervisor's workers get it too.
        os.environ["HANJI_BUS"] = args.bus
    try:
        from hanji.server.bus import check_url

        check_url(_config.bus_url())
    except ValueError as exc:
        print(f"hanji serve: {exc}", file=sys.stderr)
        return 2
    if args.http:
        os.environ["HANJI_HTTP_PARSER"] = args.http  # read by the site; inherited by workers
    try:
        _config.http_parser()
        _config.lease_ttl()  # read by every worker; refused here once, as a usage error
    except ValueError as exc:
        print(f"hanji serve: {exc}", file=sys.stderr)
        return 2
    if args.worker_link is None and (args.workers is not None or args.reload):
        # --workers N (or --reload): this process supervises N worker processes.
        from hanji import supervisor

        return supervisor.run(args)
    worker = _worker_link(args)
    if worker is not None:
        from hanji.supervisor.link import dump_stacks_on_sigusr2

        dump_stacks_on_sigusr2()  # before Django starts: a hung start-up is explained too
    setup = django_setup.setup(django_setup.applet_dirs_from_env(args.applets), data, debug)
    # Under --reload a worker may be the restart a new migration asked for: it applies
    # them, as `hanji serve` does at start (unless the user, not only the supervisor,
    # said --no-migrate).
    reloaded = args.reload and worker is not None and args.argv.count("--no-migrate") == 1
    if not args.no_migrate or reloaded:
        django_setup.migrate()

    from twisted.internet import reactor as _reactor

    from hanji.server.placement import lease_backend
    from hanji.server.runtime import HanjiServer

    reactor: Any = _reactor

    from hanji.server.security import access

    token = access.choose_token(args.host, args.no_token)
    if args.no_token and worker is None:  # a worker's supervisor warned
        _warn_no_token(args.host)
    server = HanjiServer(
        reactor, setup, host=args.host, port=args.port,
        django_threads=args.django_threads, django_queue=args.django_queue,
        drain_timeout=args.drain_timeout, access_log=args.access_log, limits=limits,
        token=token, allow_hosts=args.allow_host or (), activate_timeout=args.activate_timeout or None,
        stall_threshold_ms=args.stall_threshold, listen_fd=worker[0] if worker else None,
        # Where "exactly one" applets run: a lease per applet (hanji.server.placement).
        leases=lease_backend(data), lease_interval=_config.lease_ttl() / 3,
    )
    status = {"code": 0}

    def start() -> None:
        if link is None:  # a worker adopts the supervisor's socket once its applets are active
            try:
                server.listen()
            except Exception as exc:
                log.error("Cannot listen on %s:%s: %s. Pick another port with --port.", args.host, args.port, exc)
                status["code"] = 1
                reactor.stop()
                return
            print(f"Hanji serves {server.url}/  (Ctrl-C to stop)", file=sys.stderr, flush=True)
        if server.token and link is None:
            # Printed, not logged: the token stays out of hanji.log.
            print(f"    open {server.token_url}\n    or send the header 'X-Hanji-Token: {server.token}'",
                  file=sys.stderr, flush=True)
        started = server.start()
        if link is not None:
            # The supervisor prints the URL and the token once, for all workers.
            started.addCallback(lambda _: print(
                f"Hanji worker {_config.worker_id()} (pid {os.getpid()}) serves {server.url}/",
                file=sys.stderr, flush=True))
        if args.reload:
            # No gc.freeze() under --reload: the old versions of reloaded applets
            # must stay collectable.
            from hanji.server.reload import watch_server

            started.addCallback(lambda _: watch_server(reactor, server))
        else:
            started.addCallback(lambda _: _freeze_heap(server))
        if link is not None:
            say_ready = link.ready
            started.addCallback(lambda _: say_ready())
        elif args.ready_file:
            started.addCallback(lambda _: _write_ready_file(Path(args.ready_file), server))

    # Hand the GIL round every 1 ms instead of 5 ms: CPU-bound Django views then
    # delay the reactor about half as much (bench/FINDINGS.md, D). The process is
    # ours here; in a kernel it is the user's, so only `hanji serve` does this.
    sys.setswitchinterval(0.001)
    link = None
    if worker is not None:
        from hanji.supervisor.link import SupervisorLink, heartbeat_interval

        link = SupervisorLink(reactor, worker[1], heartbeat_interval(args.worker_timeout))
        reactor.callWhenRunning(link.start)
        reactor.addSystemEventTrigger("before", "shutdown", link.stop)
    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", server.shutdown)
    reactor.run()
    _exit_despite_threads(status["code"])
    return status["code"]


SKELETON_INIT = '''"""{title}: a Hanji applet."""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "{title}"
    description = "A new applet: edit applets/{name}/__init__.py."

    def on_activate(self):
        # Runs in a Django worker thread; reach the reactor with reactor.callFromThread
        # or self.listen_tcp(port, factory).
        self.logger.info("{name} activated")


applet = Applet()
'''

SKELETON_WEBUI = '''from hanji.core import applet
from hanji.core.utils import TwAppletResource


class Hello(TwAppletResource):
    """POST or GET /res/{name}/hello."""

    path = "hello"

    def render_GET(self, request):
        return {{"applet": self.applet.id, "hello": "world"}}

    render_POST = render_GET


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Hello]
'''

SKELETON_TEMPLATE = '''<p>{title} is alive.</p>
<button onclick="hanji.callback('{{{{ applet.id }}}}', 'hello').then(function (t) {{ document.getElementById('{name}-out').textContent = t; }})">Say hello</button>
<pre id="{name}-out"></pre>
'''

SKELETON_URLS = '''from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("{title}: a Django view.")


urlpatterns = [path("", index)]
'''


def startapplet(args: argparse.Namespace) -> int:
    """Write a working applet skeleton ``DIR/NAME``."""
    name = args.name
    if not name.isidentifier() or keyword.iskeyword(name):
        print(f"hanji startapplet: '{name}' is not a valid Python package name; use letters, digits and _.", file=sys.stderr)
        return 2
    if importlib.util.find_spec(name) is not None:
        print(f"hanji startapplet: '{name}' is already an importable module, which would hide the applet; "
              "choose another name.", file=sys.stderr)
        return 2
    target = Path(args.dir or "applets") / name
    if target.exists():
        print(f"hanji startapplet: {target} already exists; choose another name or remove it.", file=sys.stderr)
        return 2
    title = name.replace("_", " ").title()
    (target / "templates").mkdir(parents=True)
    (target / "static").mkdir()
    (target / "__init__.py").write_text(SKELETON_INIT.format(name=name, title=title))
    (target / "webUI.py").write_text(SKELETON_WEBUI.format(name=name, title=title))
    (target / "urls.py").write_text(SKELETON_URLS.format(name=name, title=title))
    (target / "templates" / "content.html").write_text(SKELETON_TEMPLATE.format(name=name, title=title))
    (target / "static" / "help.html").write_text(f"<h1>{title}</h1><p>Help for {name}.</p>\n")
    print(f"Wrote applet '{name}' in {target}; `hanji serve --applets {target.parent}` serves it.")
    return 0


def export(args: argparse.Namespace) -> int:
    """Export the ``%%applet`` cells of a saved notebook as applet packages, without a kernel."""
    from hanji.exporting import ExportError, export_notebook

    if args.static and not args.applet:
        print("hanji export: --static needs --applet NAME (the applet whose static files they are).", file=sys.stderr)
        return 2
    try:
        results = export_notebook(Path(args.notebook), Path(args.dir), args.applet,
                                  Path(args.static) if args.static else None)
    except (ExportError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for result in results:
        print(repr(result))
    return 0


def manage(args: argparse.Namespace) -> int:
    """Run a Django management command with Hanji's settings."""
    from django.core.management import execute_from_command_line

    from hanji.django import setup as django_setup

    django_setup.setup(django_setup.applet_dirs_from_env(args.applets), _data_dir(args.data))
    if args.args[:1] == ["migrate"] and set(args.args[1:]) <= {"--noinput", "--no-input"}:
        # What `hanji serve` applies at start (tables of applets without migrations
        # too; never interactive); the separate step before `hanji serve --no-migrate`
        # and the one the supervisor of `--workers N` runs once.
        failed = django_setup.migrate(verbosity=1)
        for package in sorted(failed):
            print(f"hanji manage migrate: the migrations of applet '{package}' failed (see the log); "
                  "it will not be activated.", file=sys.stderr)
        return 0
    execute_from_command_line(["hanji manage", *args.args])
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``hanji`` command."""
    parser = argparse.ArgumentParser(prog="hanji", description="Hanji: applets on Twisted and Django.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the applets")
    p.add_argument("--host", default=_config.DEFAULT_HOST)
    p.add_argument("--port", type=int, default=_config.DEFAULT_PORT)
    p.add_argument("--applets", action="append", metavar="DIR", help="applet directory (repeatable)")
    p.add_argument("--data", metavar="DIR", help="data directory (default ./.hanji or $HANJI_DATA)")
    p.add_argument("--django-threads", type=int, default=10, metavar="N")
    p.add_argument("--drain-timeout", type=float, default=10.0, metavar="S")
    p.add_argument("--activate-timeout", type=float, default=30.0, metavar="S",
                   help="mark an applet failed if its on_activate runs longer (default 30; 0: no limit)")
    p.add_argument("--log-max-bytes", type=int, default=_logfile.DEFAULT_MAX_BYTES, metavar="BYTES",
                   help=f"rotate hanji.log at this size (default {_logfile.DEFAULT_MAX_BYTES})")
    p.add_argument("--log-backups", type=int, default=_logfile.DEFAULT_BACKUPS, metavar="N",
                   help=f"old hanji.log files kept (default {_logfile.DEFAULT_BACKUPS})")
    p.add_argument("--ready-file", metavar="PATH",
                   help="once listening with the applets active, write {url, token, pid} as JSON to PATH "
                        "(for scripts and tests that start a server)")
    p.add_argument("--access-log", metavar="PATH", help="write an access log line per request to PATH (off by default)")
    p.add_argument("--http", choices=_config.HTTP_PARSERS, metavar="PARSER",
                   help="the HTTP/1.1 parser: httptools (C, faster) or twisted (twisted.web's own); "
                        f"default $HANJI_HTTP_PARSER or {_config.DEFAULT_HTTP_PARSER}")
    p.add_argument("--no-token", action="store_true",
                   help="require no access token, even off loopback (unsafe; warns)")
    p.add_argument("--allow-host", action="append", metavar="NAME",
                   help="a Host name a loopback server without a token answers to, besides "
                        "localhost, 127.0.0.1 and [::1] (repeatable)")
    p.add_argument("--stall-threshold", type=float, default=_config.DEFAULT_STALL_MS, metavar="MS",
                   help="report reactor callbacks blocking longer than MS milliseconds (default 50; 0: off)")
    p.add_argument("--bus", metavar="URL",
                   help="the broadcast bus that carries TwAppletWebSocket.broadcast() and hanji.publish() "
                        "to every process: redis://host:port/db across hosts, unix:///path (a supervisor's "
                        "relay; the default with --workers), or local (one process; the default). Sets "
                        "HANJI_BUS for the workers")
    p.add_argument("--debug", action="store_true",
                   help="tracebacks in 500 pages, and HanjiThreadError for reactor-only calls made from other threads")
    p.add_argument("--reload", action="store_true",
                   help="reload applets when their files change: Python files and templates in place, "
                        "models, migrations and settings by restarting the process (needs hanji[reload])")
    _add_worker_arguments(p)
    _add_limit_arguments(p)
    p.set_defaults(func=serve)

    p = sub.add_parser("startapplet", help="write an applet skeleton")
    p.add_argument("name")
    p.add_argument("dir", nargs="?", help="where (default ./applets)")
    p.set_defaults(func=startapplet)

    p = sub.add_parser("export", help="write the %%%%applet cells of a saved notebook as applet packages")
    p.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    p.add_argument("dir", metavar="DIR", help="the applets folder: applet NAME goes to DIR/NAME")
    p.add_argument("--applet", metavar="NAME", help="export this applet only (default: every applet)")
    p.add_argument("--static", metavar="DIR", help="copy this folder to the applet's static/ (with --applet)")
    p.set_defaults(func=export)

    p = sub.add_parser("manage", help="run a Django management command")
    p.add_argument("--applets", action="append", metavar="DIR")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hanji`` console script."""
    args = build_parser().parse_args(argv)
    # The supervisor of `hanji serve --workers N` starts its workers with these.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
