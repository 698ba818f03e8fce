"""Baseline: a bare twisted.web Site with the same trivial resource and static file.

    python bare_twisted.py PORT STATIC_DIR

Routes: /res/benchapp/hello (a plain Resource answering benchapp's bytes) and
/static/benchapp/ (twisted.web.static.File on STATIC_DIR). No Hanji code runs here;
the reactor is the default one and logging is left as Twisted leaves it.
"""

import sys

from twisted.internet import reactor
from twisted.web import resource, server, static

HELLO = b"Hello, world!\n"  # the same bytes as benchapp.payload.HELLO


class Hello(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return HELLO


def build_root(static_dir: str) -> resource.Resource:
    root = resource.Resource()
    res, res_applet = resource.Resource(), resource.Resource()
    root.putChild(b"res", res)
    res.putChild(b"benchapp", res_applet)
    res_applet.putChild(b"hello", Hello())
    stat = resource.Resource()
    root.putChild(b"static", stat)
    stat.putChild(b"benchapp", static.File(static_dir))
    return root


def main() -> None:
    port, static_dir = int(sys.argv[1]), sys.argv[2]
    reactor.listenTCP(port, server.Site(build_root(static_dir)), interface="127.0.0.1")
    print(f"bare twisted serves http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
