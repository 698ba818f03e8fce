"""The architecture's promises: layers without cycles, one seam for private internals,
one parse of each setting, and the bugs found while regrouping the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from websockets.sync.client import connect

# What `import hanji.core.applet, hanji.core.utils` loaded: names of modules, and
# whether Twisted's global reactor was installed.
_IMPORT_CORE = """
import json, sys
import hanji.core.applet, hanji.core.utils
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource, TwAppletWebSocket, defer_to_django
print(json.dumps({"modules": sorted(sys.modules),
                  "reactor": "twisted.internet.reactor" in sys.modules}))
"""


def test_core_imports_nothing_of_the_server_or_django() -> None:
    """Importing hanji.core.applet and hanji.core.utils loads no module of hanji.server, hanji.django, hanji.notebook or Django, and installs no reactor."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_CORE], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded["modules"]
           if m.startswith(("hanji.server", "hanji.django", "hanji.notebook", "django", "crochet"))]
    assert bad == []
    assert loaded["reactor"] is False
    assert "hanji.core._context" in loaded["modules"]


def test_every_private_internal_is_still_there() -> None:
    """Each private attribute of Twisted, wsproto, Django and IPython that hanji._compat reaches exists in the installed versions."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure()
        django.setup()
    from hanji import _compat

    assert _compat.missing() == [], (
        f"An upgrade removed private internals Hanji uses: {_compat.missing()}; "
        "see hanji/_compat.py for what each is for and find the new way."
    )


def test_the_compat_check_names_a_removed_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    """When an upgrade removes one of the private attributes, the check names it."""
    from twisted.web import http

    from hanji import _compat

    monkeypatch.delattr(http.HTTPChannel, "_respondToBadRequestAndDisconnect")
    assert "HTTPChannel._respondToBadRequestAndDisconnect" in _compat.missing()


def test_no_private_attribute_outside_the_seam() -> None:
    """No module of hanji but hanji._compat names the private attributes the seam wraps."""
    import pathlib

    import hanji

    names = ("_handlingRequest", "_receivedHeaderCount", "_networkProducer", "._poller", "._team",
             "_wsconn", "_check_token", "_showtraceback", "_dont_enforce_csrf_checks", "apps.app_configs",
             "apps.all_models", "_respondToBadRequestAndDisconnect", "_protocolUpgradeForWebsockets",
             "_parseRangeHeader", "_generateName", "._disconnected", "NoResource")
    root = pathlib.Path(hanji.__file__).parent
    found = [f"{path.relative_to(root)}: {name}" for path in root.rglob("*.py") if path.name != "_compat.py"
             for name in names if name in path.read_text()]
    assert found == []


_DEBUG_PARSE = """
import json
from hanji import _threads
from hanji.django import settings
print(json.dumps({"hanji": _threads.debug_enabled(), "django": settings.DEBUG}))
"""


@pytest.mark.parametrize("value, expected", [("off", False), ("no", False), ("0", False), ("", False),
                                             ("on", True), ("yes", True), ("TRUE", True), ("1", True)])
def test_hanji_debug_means_the_same_to_hanji_and_django(value: str, expected: bool, tmp_path: Any) -> None:
    """HANJI_DEBUG is parsed once: Hanji's debug mode and Django's DEBUG agree for every spelling."""
    env = dict(os.environ, HANJI_DEBUG=value, HANJI_DATA=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _DEBUG_PARSE], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"hanji": expected, "django": expected}


def test_a_garbled_hanji_debug_is_refused_with_its_name(tmp_path: Any) -> None:
    """hanji serve refuses HANJI_DEBUG=maybe with exit status 2 and a message naming the variable."""
    env = dict(os.environ, HANJI_DEBUG="maybe")
    out = subprocess.run([sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "HANJI_DEBUG='maybe' is not a flag" in out.stderr


def test_a_constructor_bug_in_a_resource_class_is_not_hidden() -> None:
    """A TypeError raised inside a plain resource class's constructor fails the build instead of a silent retry without the applet."""
    from twisted.web.resource import Resource

    from hanji.core.applet import Applet, WebUI
    from hanji.server import mounting
    from hanji.server.registry import prepare

    class Buggy(Resource):
        path = "buggy"

        def __init__(self, applet: Any = None) -> None:
            super().__init__()
            self.size = len(applet.id) + "1"  # the bug: int + str raises TypeError

    class Plain(Resource):
        path = "plain"  # takes no argument: built without the applet, which is set after

    class Web(WebUI):
        twisted_dynamic_resources = [Buggy]

    record = prepare(Applet(id="buggy_applet"), Web)
    with pytest.raises(TypeError, match="unsupported operand"):
        mounting.build_routes(record, reactor=None)

    class PlainWeb(WebUI):
        twisted_dynamic_resources = [Plain]

    record = prepare(Applet(id="plain_applet"), PlainWeb)
    mounting.build_routes(record, reactor=None)
    assert record.resources["plain"].applet is record.applet


def test_exception_line_is_the_exception_of_a_traceback() -> None:
    """The one-line summary of an error is the traceback's exception line, also for chained exceptions."""
    from hanji._errorlog import exception_line

    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\n"
            "KeyError: 'a'\n\nDuring handling of the above exception, another exception occurred:\n\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 3, in f\n    h()\nValueError: bad value\n\n")
    assert exception_line(text) == "ValueError: bad value"
    assert exception_line(None) == ""
    assert exception_line("on_activate() did not return within 1 s") == "on_activate() did not return within 1 s"


def test_a_plain_websocket_under_res_does_not_hold_up_the_drain(start_server: Any) -> None:
    """A plain twisted.web websocket mounted under /res is not counted as a request in flight: SIGTERM drains at once and the server says it stopped."""
    server = start_server(args=["--drain-timeout", "60"])
    ws_url = server.url.replace("http://", "ws://") + "/res/guardtest/plainws"
    headers = {"Authorization": f"token {server.token}"} if server.token else None
    with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
        assert ws.protocol.state.name == "OPEN"
        # Without the fix the upgraded request stays "in flight" and SIGTERM waits
        # the whole 60 s drain deadline: stop() gives up after 30 s and fails.
        assert server.stop(timeout=30) == 0
    log = server.log
    assert "Drain deadline passed" not in log
    assert "Hanji stopped." in log
