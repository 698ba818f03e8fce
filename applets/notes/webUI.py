"""notes' Twisted side: JSON read from the database without blocking the reactor."""

from hanji.core import applet
from hanji.core.utils import TwAppletResource, defer_to_django


def _recent(limit):
    from .models import Note

    return [n.as_dict() for n in Note.objects.all()[:limit]]


class NoteList(TwAppletResource):
    """GET /res/notes/list?limit=N: the newest notes as JSON (ORM in the Django pool)."""

    path = "list"

    def render_GET(self, request):
        try:
            limit = int(request.args.get("limit", ["20"])[0])
        except ValueError:
            request.setResponseCode(400)
            return {"error": "limit must be an integer"}
        return defer_to_django(_recent, max(0, min(limit, 500)))


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [NoteList]


web = WebUI()
