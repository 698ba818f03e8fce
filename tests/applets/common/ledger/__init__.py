"""Test applet: a table that writers of every kind fill at once (tests/server/test_data.py).

``POST /applets/ledger/write?writer=W`` (a Django view) and ``POST /res/ledger/write?writer=W``
(a Twisted resource, through ``defer_to_django``) each add writer W's next row; a
notebook cell calls :func:`ledger.rows.write_row` directly. ``on_activate`` reads the
table, so a Django worker opens a database connection at start-up.
"""

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource, defer_to_django


class Applet(_applet.Applet):
    name = "Ledger"

    def on_activate(self):
        from ledger.models import Entry

        self.rows_at_start = Entry.objects.count()


class Write(TwAppletResource):
    path = "write"

    def render_POST(self, request):
        from ledger.rows import write_row

        return defer_to_django(write_row, request.args["writer"][0]).addCallback(lambda seq: {"seq": seq})


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Write]
    template = "<p>ledger: the rows of the data tests</p>"
