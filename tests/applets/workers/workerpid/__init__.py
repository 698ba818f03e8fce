"""Test applet for `hanji serve --workers N`: which worker answers, and a reactor blocker.

GET /res/workerpid/pid     the answering worker's pid (text)
GET /res/workerpid/env     "pid HANJI_SUPERVISOR_PID HANJI_WORKER_ID" of the answering worker
GET /res/workerpid/slow    the pid, answered after ?ms= milliseconds (a callLater:
                           a request in flight during a drain)
GET /res/workerpid/block   blocks the reactor for ?s= seconds with time.sleep (the
                           heartbeat stops; only for the supervisor's timeout test)
GET /res/workerpid/sign     "pid value": "hanji" signed with Django's secret key
GET /res/workerpid/unsign  "pid hanji" if ?value= bears a valid signature, else 400
GET /applets/workerpid/    the pid, from a Django view
"""

import os
import time

from twisted.internet import reactor
from twisted.web.server import NOT_DONE_YET

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


def _number(request, name, default):
    return float(request.args.get(name.encode(), [str(default).encode()])[0])


class Pid(TwAppletResource):
    path = "pid"

    def render_GET(self, request):
        return str(os.getpid()).encode()


class Env(TwAppletResource):
    path = "env"

    def render_GET(self, request):
        names = ("HANJI_SUPERVISOR_PID", "HANJI_WORKER_ID")
        return " ".join([str(os.getpid())] + [os.environ.get(n, "-") for n in names]).encode()


class Sign(TwAppletResource):
    path = "sign"

    def render_GET(self, request):
        from django.core import signing

        return f"{os.getpid()} {signing.dumps('hanji')}".encode()


class Unsign(TwAppletResource):
    path = "unsign"

    def render_GET(self, request):
        from django.core import signing

        try:
            value = signing.loads(request.args[b"value"][0].decode())
        except signing.BadSignature:
            request.setResponseCode(400)
            return f"{os.getpid()} bad signature".encode()
        return f"{os.getpid()} {value}".encode()


class Slow(TwAppletResource):
    path = "slow"

    def render_GET(self, request):
        self.applet.logger.info("slow request started in worker %d", os.getpid())

        def answer():
            if not request.finished and not request._disconnected:
                request.write(str(os.getpid()).encode())
                request.finish()

        reactor.callLater(_number(request, "ms", 200) / 1000, answer)
        return NOT_DONE_YET


class Block(TwAppletResource):
    path = "block"

    def render_GET(self, request):
        time.sleep(_number(request, "s", 10))
        return str(os.getpid()).encode()


class Applet(_applet.Applet):
    name = "Worker pid"
    description = "Says which worker process answers."


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Pid, Env, Sign, Unsign, Slow, Block]


applet = Applet()
web = WebUI()
