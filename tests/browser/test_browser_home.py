"""The home page in a real browser: every example applet's card, and hello_world's buttons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from playwright.sync_api import expect

APPLETS = Path(__file__).resolve().parents[2] / "applets"
EXAMPLE_APPLETS = sorted(p.name for p in APPLETS.iterdir() if (p / "__init__.py").is_file())
HELLO_PATH = "/res/hello_world/path_to_my_resource"


def test_home_shows_every_example_applet(server: Any, open_page: Callable[..., Any]) -> None:
    """The home page shows a working card, with a loaded icon if any, for each applet in applets/."""
    watch = open_page("home-cards", server.url + "/")
    page = watch.page
    expect(page).to_have_title("Hanji")
    expect(page.locator("section.applet.failed")).to_have_count(0)
    for applet_id in EXAMPLE_APPLETS:
        card = page.locator(f"section#applet-{applet_id}")
        expect(card).to_be_visible()
        expect(card.locator("h2")).not_to_be_empty()
        expect(card.locator(".content .error")).to_have_count(0)
    broken = page.eval_on_selector_all(
        "section.applet img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"icons that did not load: {broken}"
    watch.assert_clean()


def test_hello_world_buttons_call_the_reactor(server: Any, open_page: Callable[..., Any]) -> None:
    """hello_world's buttons show the Twisted resource's answer and Dave's apology in #hello-answer."""
    watch = open_page("home", server.url + "/")
    watch.expect_http_error(HELLO_PATH)  # #hello-bad answers 500 on purpose
    page = watch.page
    answer = page.locator("#applet-hello_world #hello-answer")
    page.locator("#hello-good").click()
    expect(answer).to_have_text("All right")
    page.locator("#hello-bad").click()
    expect(answer).to_contain_text("I'm sorry Dave")
    watch.assert_clean()
