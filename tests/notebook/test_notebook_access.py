"""The kernel's server always has an access token, and the notebook clients send it."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from support.kernels import Kernel

WHO_ASKS = """
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource

class WhoAsks(TwAppletResource):
    path = "who"
    def render_GET(self, request):
        return {"authorization": (request.getHeader(b"authorization") or b"").decode(),
                "x-hanji-token": (request.getHeader(b"x-hanji-token") or b"").decode()}
    render_POST = render_GET

class WhoWeb(WebUI):
    twisted_dynamic_resources = [WhoAsks]

hanji.activate(Applet(id="who"), web=WhoWeb)
"""

SESSION = "__import__('hanji.notebook.session', fromlist=['_']).get_session()"


def _status(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> int:
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_kernel_server_requires_a_token_on_loopback(new_kernel) -> None:  # type: ignore[no-untyped-def]
    """Without HANJI_TOKEN the in-kernel server on 127.0.0.1 has a random token that outside callers must present."""
    k = new_kernel(env={"HANJI_TOKEN": ""}, applets=None)
    k.ok("%load_ext hanji\nimport hanji\n" + WHO_ASKS)
    base = k.value("hanji.url()")
    token = k.value(f"{SESSION}.token")
    assert base.startswith("http://127.0.0.1:") and re.fullmatch(r"[0-9a-f]{48}", token)
    assert _status(base + "res/who/who") == 403
    assert _status(base) == 403  # Django's home page too
    assert _status(base + "res/who/who", {"Authorization": f"token {token}"}) == 200
    assert k.value("hanji.get(('who', 'who')).json()") == {"authorization": "", "x-hanji-token": token}


def test_client_calls_send_the_token_header(kernel: Kernel) -> None:
    """hanji.get/post/aget send the token in X-Hanji-Token, so they pass the access and CSRF
    checks, and a caller's own Authorization header travels beside it untouched."""
    kernel.ok(WHO_ASKS)
    token = kernel.value(f"{SESSION}.token")
    sent = {"authorization": "", "x-hanji-token": token}
    assert kernel.value("hanji.get(('who', 'who')).json()") == sent
    assert kernel.value("hanji.post(('who', 'who'), data={'a': '1'}).json()") == sent
    assert kernel.value("(await hanji.aget(('who', 'who'))).status") == 200
    mine = kernel.value("hanji.get(('who', 'who'), headers={'Authorization': 'Token drf-key'}).json()")
    assert mine == {"authorization": "Token drf-key", "x-hanji-token": token}
    # A caller's own X-Hanji-Token replaces the kernel's: a wrong one is refused.
    assert kernel.value("hanji.get(('who', 'who'), headers={'X-Hanji-Token': 'wrong'}).status") == 403


def test_ws_client_sends_the_token_header(kernel: Kernel) -> None:
    """hanji.ws opens a websocket on the token-protected server (the echo applet answers)."""
    kernel.ok("conn = hanji.ws('echo', 'echo', timeout=20)\nconn.send('hi')")
    assert kernel.value("conn.receive(timeout=20)") == "hi"
    kernel.ok("conn.close()")


def test_show_frame_carries_a_one_time_ticket_that_opens_the_page(kernel: Kernel) -> None:
    """The page hanji.show frames has a ?ticket= whose first use opens it and sets the cookie; a second use is refused."""
    kernel.ok(WHO_ASKS)
    (html,) = kernel.ok("hanji.show('who')").data("text/html")
    src = re.search(r'<iframe data-hanji-url="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "ticket=" in src and "token=" not in src
    with urllib.request.urlopen(src, timeout=30) as resp:
        assert resp.status == 200
        assert any(c.startswith("hanji-token-") for c in resp.headers.get_all("Set-Cookie"))
    assert _status(src) == 403  # spent: only the cookie it set opens it again


def test_saved_outputs_hold_no_token_and_say_when_hanji_stopped(new_kernel) -> None:  # type: ignore[no-untyped-def]
    """The banner and hanji.show outputs hold no access token, and %unload_ext hanji replaces them by a "Hanji stopped" note."""
    k = new_kernel(env={"HANJI_TOKEN": ""}, applets=None)
    loaded = k.ok("%load_ext hanji\nimport hanji\n" + WHO_ASKS)
    shown = k.ok("hanji.show('who')")
    token = k.value(f"{SESSION}.token")
    displays = [o["content"] for o in loaded.outputs + shown.outputs if o["msg_type"] == "display_data"]
    ids = {d.get("transient", {}).get("display_id") for d in displays} - {None}
    assert len(ids) == 2, displays  # the banner and the frame
    assert token not in json.dumps([d["data"] for d in displays])
    unloaded = k.ok("%unload_ext hanji")
    updates = {o["content"]["transient"]["display_id"]: o["content"]["data"] for o in unloaded.outputs
               if o["msg_type"] == "update_display_data"}
    assert set(updates) == ids
    assert all("Hanji stopped" in d["text/plain"] and "Hanji stopped" in d["text/html"] for d in updates.values())


def test_hanji_token_sets_the_kernel_token(new_kernel) -> None:  # type: ignore[no-untyped-def]
    """HANJI_TOKEN fixes the token of the kernel's server."""
    k = new_kernel(env={"HANJI_TOKEN": "nb-fixed-token"}, applets=None)
    k.ok("%load_ext hanji\nimport hanji")
    assert k.value(f"{SESSION}.token") == "nb-fixed-token"
    base = k.value("hanji.url()")
    assert _status(base, {"Authorization": "token nb-fixed-token"}) == 200
    assert _status(base + "?token=nb-fixed-token") == 200
    assert _status(base) == 403
