"""Test applet: Django's user in Twisted resources and websockets (hanji.core.auth)."""

from hanji.core import applet as _applet
from hanji.core.auth import django_user, login_required
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class Me(TwAppletResource):
    """GET: the logged-in user's name; 403 for anyone else."""

    path = "me"

    @login_required
    def render_GET(self, request):
        return {"user": request.django_user.get_username()}


class Staff(TwAppletResource):
    """GET: only for users with auth.view_user."""

    path = "staff"

    @login_required(permission="auth.view_user")
    async def render_GET(self, request):
        return {"staff": request.django_user.get_username()}


class Login(TwAppletResource):
    """GET: anonymous visitors are sent to the admin's login page."""

    path = "needs_login"

    @login_required(login_url="/admin/login/")
    def render_GET(self, request):
        return "in"


class Who(TwAppletResource):
    """GET: whoever asks, anonymous included (django_user)."""

    path = "who"

    def render_GET(self, request):
        return django_user(request).addCallback(lambda user: {"anonymous": user.is_anonymous})


class Hello(TwAppletWebSocket):
    """Greets the logged-in user by name; anonymous connections are refused."""

    path = "hello"
    login_required = True

    def on_open(self):
        self.send(f"hello {self.user.get_username()}")


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Me, Staff, Login, Who]
    websocket_resources = [Hello]
    template = "<p>Django users in resources and websockets.</p>"


applet = _applet.Applet()
