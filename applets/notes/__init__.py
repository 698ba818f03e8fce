"""notes: a Django applet (model, views, urls, fixture) with a non-blocking Twisted reader."""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Notes"
    description = "Notes in the database: Django pages under /applets/notes/ and JSON at /res/notes/list."

    def on_activate(self):
        # A Django worker thread: the ORM may be used here directly.
        from django.core.management import call_command

        from .models import Note

        if not Note.objects.exists():
            call_command("loaddata", "notes", verbosity=0)


applet = Applet()
