from hanji.core import applet
from hanji.core.utils import TwAppletResource


class EchoInfo(TwAppletResource):
    """GET /res/echo/info: where the echo server listens."""

    path = "info"

    def render_GET(self, request):
        return {"configured_port": self.applet.port_number, "listening": self.applet.ports}


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [EchoInfo]
    template = (
        "<p>Line echo over TCP on port <code>{{ applet.port_number }}</code>: "
        "<code>nc 127.0.0.1 {{ applet.port_number }}</code>.</p>"
    )


web = WebUI()
