"""Run a Hanji server in-process (reactor in a crochet thread), deactivate the echo
applet and print what happened as JSON. Used by test_lifecycle.py in a subprocess."""

import json
import socket
import sys
import threading

import crochet

crochet.setup()

from twisted.internet import reactor  # noqa: E402

from hanji.server import django_setup  # noqa: E402
from hanji.server.runtime import HanjiServer  # noqa: E402


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


applets_dir, data_dir = sys.argv[1], sys.argv[2]
setup = django_setup.setup([django_setup.Path(applets_dir)], data_dir)
django_setup.migrate()
server = HanjiServer(reactor, setup, port=0)


@crochet.wait_for(timeout=30)
def on_reactor(f, *args):
    return f(*args)


on_reactor(server.start)
record = server.registry.get("echo")
port = record.applet._hanji_opened.ports[0].getHost().port
result = {"thread": threading.current_thread().name, "port": port, "before": can_connect(port)}
client = socket.create_connection(("127.0.0.1", port), timeout=10)
client.sendall(b"ping\n")
result["echo"] = client.recv(100).decode()
on_reactor(server.deactivate, "echo")
result["after_deactivate"] = can_connect(port)
result["client_closed"] = client.recv(100) == b""
result["on_deactivate_thread_ok"] = True
on_reactor(server.shutdown, 5)
print(json.dumps(result))
