"""The chat applet's card in real browsers: live delivery between members and history replay.

The card's DOM contract: ``#applet-chat`` holds ``input#chat-name``, ``input#chat-input``,
``button#chat-send`` and ``ul#chat-log``, one ``<li>`` per message with sender and text.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest
from playwright.sync_api import expect


def _say(page: Any, name: str, text: str) -> None:
    """Type ``text`` as ``name`` in the chat card and press Send."""
    card = page.locator("#applet-chat")
    card.locator("#chat-name").fill(name)
    card.locator("#chat-input").fill(text)
    card.locator("#chat-send").click()


def _expect_message(page: Any, name: str, text: str) -> None:
    """Wait until the page's chat log has a line with ``text`` sent by ``name``."""
    line = page.locator("#applet-chat #chat-log li").filter(has_text=text)
    expect(line.first).to_be_visible()
    expect(line.first).to_contain_text(name)


def test_chat_message_reaches_the_other_member_and_history(server: Any, open_page: Callable[..., Any]) -> None:
    """A message typed in one browser appears in its own and another member's log, and is replayed to a newcomer."""
    tag = uuid.uuid4().hex[:8]  # the shared server's history may hold other tests' messages
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    a = open_page("chat-a", server.url + "/")
    if a.page.locator("#applet-chat").count() == 0:
        pytest.fail("The home page has no #applet-chat card: applets/chat is missing or failed to activate.", pytrace=False)
    b = open_page("chat-b", server.url + "/")

    # Bob sees his own message first: his connection is open before Alice speaks,
    # so her message must reach him live, not through the history replay.
    _say(b.page, bob, f"hi, I am here {tag}")
    _expect_message(b.page, bob, f"hi, I am here {tag}")

    _say(a.page, alice, f"hello from Alice {tag}")
    _expect_message(a.page, alice, f"hello from Alice {tag}")
    _expect_message(b.page, alice, f"hello from Alice {tag}")
    _expect_message(a.page, bob, f"hi, I am here {tag}")

    c = open_page("chat-c", server.url + "/")
    _expect_message(c.page, bob, f"hi, I am here {tag}")
    _expect_message(c.page, alice, f"hello from Alice {tag}")
    lines = c.page.locator("#applet-chat #chat-log li").all_inner_texts()
    mine = [line for line in lines if tag in line]
    assert "hi, I am here" in mine[0] and "hello from Alice" in mine[1], f"history out of order: {mine}"

    for watch in (a, b, c):
        watch.assert_clean()


def test_chat_room_page_replays_history(server: Any, open_page: Callable[..., Any]) -> None:
    """The room's own page /applets/chat/ has the same widget and replays a message sent from the home page."""
    tag = uuid.uuid4().hex[:8]
    home = open_page("chat-home", server.url + "/")
    if home.page.locator("#applet-chat").count() == 0:
        pytest.fail("The home page has no #applet-chat card: applets/chat is missing or failed to activate.", pytrace=False)
    _say(home.page, f"carol-{tag}", f"anyone on the room page? {tag}")
    _expect_message(home.page, f"carol-{tag}", f"anyone on the room page? {tag}")

    room = open_page("chat-room", server.url + "/applets/chat/")
    _expect_message(room.page, f"carol-{tag}", f"anyone on the room page? {tag}")
    _say(room.page, f"dan-{tag}", f"yes, here {tag}")
    _expect_message(home.page, f"dan-{tag}", f"yes, here {tag}")

    home.assert_clean()
    room.assert_clean()
