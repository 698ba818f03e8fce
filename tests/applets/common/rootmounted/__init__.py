"""Test applet mounted at the site root, whose urls.py overlaps a Twisted resource."""

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


class Applet(_applet.Applet):
    url_prefix = ""


class Both(TwAppletResource):
    path = "both"

    def render_GET(self, request):
        return "twisted"


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Both]
    template = "<p>root-mounted</p>"
