"""The measuring side of issues 14 and 15 (bench/): the profile's attribution, the worker
shares, the process-tree CPU and the clean skip of figures this build cannot run.

These are fast checks of the harness itself (no wrk, no server); `bench/run.py --rounds 1
--duration 1` is the end-to-end check (bench/README.md).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

from support.paths import ROOT
from support.polling import wait_until

BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def _bench_profile() -> ModuleType:
    """bench/profile.py (its name shadows the standard library's ``profile``)."""
    spec = importlib.util.spec_from_file_location("bench_profile", BENCH / "profile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_profile"] = module
    spec.loader.exec_module(module)
    return module


RAW = "\n".join([
    # the reactor parsing a request (outermost frame first, thread first: py-spy --threads)
    "thread (1): MainThread;<module> (hanji/__main__.py:3);ReactorBase.run (twisted/internet/base.py:1);"
    "ReactorBase.mainLoop (twisted/internet/base.py:2);EPollReactor.doPoll (twisted/internet/epollreactor.py:3);"
    "HTTPChannel.dataReceived (twisted/web/http.py:4);HTTPChannel.lineReceived (twisted/web/http.py:5) 30",
    # the reactor handing the request to the pool
    "thread (1): MainThread;ReactorBase.run (twisted/internet/base.py:1);Request.process (twisted/web/server.py:6);"
    "WSGIResource.render (twisted/web/wsgi.py:7);Queue.put (queue.py:8) 20",
    # a worker in Django
    "thread (2): HanjiDjango-1;Thread._bootstrap (threading.py:1);WSGIHandler.__call__ (django/core/handlers/wsgi.py:2);"
    "BaseHandler.get_response (django/core/handlers/base.py:3) 40",
    # a worker handing the answer back
    "thread (3): HanjiDjango-2;Thread._bootstrap (threading.py:1);_WSGIResponse.write (twisted/web/wsgi.py:2);"
    "blockingCallFromThread (twisted/internet/threads.py:3);Condition.wait (threading.py:4) 10",
    # a truncated stack (innermost frames only) of a pool thread
    "thread (4): HanjiDjango-3;ResponseHeaders.__setitem__ (django/http/response.py:93) 5",
])


def test_profile_splits_samples_by_thread_and_step() -> None:
    """py-spy's raw samples are split into reactor and worker time and into the steps of a
    request (parsing, hand-off in, Django, hand-off out), truncated stacks included."""
    profile = _bench_profile()
    total, inclusive, self_, groups, threads, steps = profile.parse_raw(RAW)
    assert total == 105
    assert threads["reactor thread"] == 50
    assert threads["worker threads (Django / WSGI pool)"] == 55
    by_step = {label.split(": ", 1)[1].split(":")[0].split(" (")[0]: n for label, n in steps.items()}
    assert by_step["HTTP parsing and Request allocation"] == 30
    assert by_step["hand-off in"] == 20
    assert by_step["Django"] == 45
    assert by_step["hand-off out"] == 10
    assert self_["HTTPChannel.lineReceived (twisted/web/http.py)"] == 30
    assert inclusive["ReactorBase.run (twisted/internet/base.py)"] == 50


def test_worker_shares_name_idle_workers_and_the_parent() -> None:
    """Figure 8 reports every process of a multi-process server: a worker that answered
    nothing shows 0 % of the requests, and the parent (supervisor) is named as such."""
    import _workers_figures as wf

    text = wf._shares(100, {"101": 75, "102": 25}, {100: 0.0, 101: 1.5, 102: 0.5, 103: 0.0}, 2.0)
    assert text.startswith("pid 101: 75 % of requests, 75 % CPU; pid 102: 25 % of requests, 25 % CPU")
    assert "pid 103: 0 % of requests" in text
    assert text.endswith("parent: 0 % of requests, 0 % CPU")


def test_tree_cpu_counts_worker_processes() -> None:
    """A server's CPU includes its worker processes (gunicorn, granian, a supervisor's
    workers), not only the process the harness started."""
    from _harness import proc_cpu_seconds, proc_tree_cpu_seconds

    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(60)\n"
    own0 = proc_cpu_seconds(os.getpid())
    tree0 = proc_tree_cpu_seconds(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        wait_until(lambda: proc_tree_cpu_seconds(os.getpid()) - tree0 >= 0.25 + (proc_cpu_seconds(os.getpid()) - own0),
                   30, "the child's CPU never showed in the tree")
    finally:
        child.kill()
        child.wait(10)


def test_worker_figures_skip_cleanly_without_workers(monkeypatch) -> None:
    """When `hanji serve --help` lists no --workers, figures 8-10 add a "not available in
    this build" row and a note instead of failing."""
    import _servers as S
    import _workers_figures as wf
    from _harness import Cores
    from _report import Report

    monkeypatch.setattr(S, "_HELP", ["usage: hanji serve [-h] [--host HOST] [--port PORT]\n"])
    report = Report()
    cores = Cores(None, None)

    def never(server):  # no server may start
        raise AssertionError("a server was started")

    wf.figure_8(report, None, cores, never, never, 1)  # type: ignore[arg-type]
    wf.figure_9(report, None, cores, never, never, 1)  # type: ignore[arg-type]
    wf.figure_10(report, cores, never, never)
    assert [r.figure for r in report.rows] == ["8", "9", "10"]
    assert all(r.hanji == wf.NOT_AVAILABLE and r.verdict == "skipped" for r in report.rows)
    assert all("not available in this build" in n for n in report.notes)
