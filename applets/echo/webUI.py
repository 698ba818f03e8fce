from hanji.core import applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class EchoInfo(TwAppletResource):
    """GET /res/echo/info: where the echo server listens (nothing, null in a standby process)."""

    path = "info"

    def render_GET(self, request):
        return {"configured_port": self.applet.port_number, "listening": self.applet.ports}


class EchoSocket(TwAppletWebSocket):
    """/ws/echo/echo: send every message back as it came (text as text, bytes as bytes)."""

    path = "echo"

    def on_message(self, message):
        self.send(message)


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [EchoInfo]
    websocket_resources = [EchoSocket]
    template = (
        "{% for port in applet.ports %}<p>Line echo over TCP on port <code>{{ port }}</code>: "
        "<code>nc 127.0.0.1 {{ port }}</code>.</p>{% empty %}<p>The echo port is not open in this process (with several "
        "workers or hosts, the one where this applet runs listens).</p>{% endfor %}"
        "<p>Websocket echo at <code>/ws/{{ applet.id }}/echo</code>.</p>"
    )


web = WebUI()
