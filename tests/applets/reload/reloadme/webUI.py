import os
import time
from pathlib import Path

from hanji.core import applet
from hanji.core.utils import TwAppletResource, defer_to_django

from reloadme import answers
from reloadme.models import Note


class Version(TwAppletResource):
    """GET /res/reloadme/version: the VERSION of answers.py."""

    path = "version"

    def render_GET(self, request):
        return answers.VERSION.encode()


class Slow(TwAppletResource):
    """GET /res/reloadme/slow: VERSION, answered from a Django worker that first
    creates ``slow-started`` in the data dir, then waits for ``slow-release`` there
    (a request held in flight while the applet is swapped)."""

    path = "slow"

    def render_GET(self, request):
        def work():
            data = Path(os.environ["HANJI_DATA"])
            (data / "slow-started").touch()
            deadline = time.monotonic() + 30
            while not (data / "slow-release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            return answers.VERSION.encode()

        return defer_to_django(work)


class Model(TwAppletResource):
    """GET /res/reloadme/model: the model class's module (the kept models module)."""

    path = "model"

    def render_GET(self, request):
        return f"{Note.__module__}:{id(Note)}".encode()


class Frozen(TwAppletResource):
    """GET /res/reloadme/frozen: how many objects gc.freeze() moved out of the
    collector's sight (0 under --reload: old versions must be freed)."""

    path = "frozen"

    def render_GET(self, request):
        import gc

        return str(gc.get_freeze_count()).encode()


class Pid(TwAppletResource):
    """GET /res/reloadme/pid: the serving process's pid."""

    path = "pid"

    def render_GET(self, request):
        return str(os.getpid()).encode()


class Tables(TwAppletResource):
    """GET /res/reloadme/tables: the applet's tables in the database (a migration
    added on disk shows up here once applied)."""

    path = "tables"

    def render_GET(self, request):
        def tables():
            from django.db import connection

            return sorted(t for t in connection.introspection.table_names() if t.startswith("reloadme_"))

        return defer_to_django(tables)


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Version, Slow, Model, Frozen, Pid, Tables]
