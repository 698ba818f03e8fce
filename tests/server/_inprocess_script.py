"""Run a Hanji server in-process (reactor in a crochet thread) and exercise what can
only be driven from inside: deactivation, hot swap with a request in flight, an
activation the caller stops waiting for. Print the findings as JSON; test_lifecycle.py
runs this in a subprocess and asserts on them."""

import json
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import crochet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support

from support.net import can_connect  # noqa: E402
from support.polling import wait_until  # noqa: E402

crochet.setup()

from twisted.internet import reactor  # noqa: E402

from hanji.core.applet import Applet  # noqa: E402
from hanji.django import setup as django_setup  # noqa: E402
from hanji.server.registry import load_package  # noqa: E402
from hanji.server.runtime import HanjiServer  # noqa: E402


@crochet.wait_for(timeout=60)
def on_reactor(f, *args):
    return f(*args)


applet_dirs, data_dir = [django_setup.Path(d) for d in sys.argv[1:-1]], sys.argv[-1]
setup = django_setup.setup(applet_dirs, data_dir)
django_setup.migrate()
server = HanjiServer(reactor, setup, port=0)
on_reactor(server.start)
result = {}

# 1. Deactivating echo closes its port and its open connections.
port = server.registry.get("echo").applet.ports[0]
result["before"] = can_connect(port)
client = socket.create_connection(("127.0.0.1", port), timeout=10)
client.sendall(b"ping\n")
result["echo"] = client.recv(100).decode()
on_reactor(server.deactivate, "echo")
result["after_deactivate"] = can_connect(port)
result["client_closed"] = client.recv(100) == b""

# 2. A hot swap while a request waits on a Deferred: the request still gets its answer.
answers = {}


def slow_request():
    with urllib.request.urlopen(server.url + "/res/contract/sleepy?s=0.5", timeout=20) as resp:
        answers["sleepy"] = (resp.status, resp.read().decode())


requester = threading.Thread(target=slow_request)
requester.start()


def sleepy_in_flight():
    return any(r.path == b"/res/contract/sleepy" for r in server.site.in_flight)


wait_until(lambda: on_reactor(sleepy_in_flight), 10, "the sleepy request in flight", interval=0.02)
result["in_flight_at_swap"] = on_reactor(sleepy_in_flight)  # waiting in the old instance's resource
old = server.registry.get("contract").applet
contract_pkg = server.registry.get("contract")
new_record = load_package("contract", contract_pkg.path)
on_reactor(server.activate_record, new_record)
requester.join(20)
result["swap_answer"] = answers.get("sleepy")
result["version_after_swap"] = server.registry.get("contract").version

# 3. The old instance's on_deactivate ran in a Django worker, and its LoopingCall stopped.
import contract  # noqa: E402

result["old_deactivate_thread"] = old.deactivate_thread
on_reactor(server.deactivate, "contract")
ticks = contract.TICKS[0]
time.sleep(0.3)
result["ticks_after_deactivate"] = contract.TICKS[0] - ticks


# 4. An activation whose caller stops waiting: what on_activate opens is still closed.
class SlowStarter(Applet):
    id = "slow_starter"

    def on_activate(self):
        time.sleep(1)
        self.port = self.listen_tcp(0, contract_factory(), interface="127.0.0.1").getHost().port


def contract_factory():
    from twisted.internet.protocol import Factory, Protocol

    return Factory.forProtocol(Protocol)


def activate_with_timeout():
    d = server.activate(SlowStarter)
    d.addTimeout(0.3, reactor)
    return d.addErrback(lambda f: f.type.__name__)


result["timed_out_with"] = on_reactor(activate_with_timeout)
record = server.registry.get("slow_starter")
result["slow_state"] = record.state
# The caller does not wait for the worker (the swap lock is free at once), but what
# on_activate opened is closed when it returns.
wait_until(lambda: hasattr(record.applet, "port"), 20, "on_activate of slow_starter opened its port")
wait_until(lambda: not can_connect(record.applet.port), 20, "the port of slow_starter closed")
result["slow_ports_left"] = [p for p in [record.applet.port] if can_connect(p)]

on_reactor(server.shutdown, 5)
print(json.dumps(result))
