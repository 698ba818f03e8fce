"""The chat room: a websocket endpoint on the reactor, the database in the Django pool."""

import json

from twisted.internet import defer

from hanji.core import applet
from hanji.core.utils import TwAppletWebSocket, defer_to_django

HISTORY = 50  # messages replayed to a new member
MAX_NAME, MAX_TEXT = 40, 2000


def recent(limit):
    """Return the last ``limit`` messages, oldest first; Django pool."""
    from .models import Message

    newest = list(Message.objects.order_by("-id")[:limit])
    return [m.as_dict() for m in reversed(newest)]


def save(name, text):
    """Store a message and return it as sent on the websocket; Django pool."""
    from .models import Message

    return Message.objects.create(name=name, text=text).as_dict()


def parse(message):
    """Return ``(name, text)`` from a JSON ``{"name", "text"}`` message (plain text
    is taken as an anonymous message); text is empty if there is nothing to say."""
    try:
        data = json.loads(message)
    except ValueError:
        data = {"text": message}
    if not isinstance(data, dict):
        data = {"text": message}
    name = str(data.get("name") or "").strip()[:MAX_NAME] or "anonymous"
    text = str(data.get("text") or "").strip()[:MAX_TEXT]
    return name, text


class ChatRoom(TwAppletWebSocket):
    """/ws/chat/room: one instance per member; every method runs on the reactor thread."""

    path = "room"
    max_message_size = 16 * 1024
    saving = defer.DeferredLock()  # one save at a time: ids, history and live order agree

    def on_open(self):
        # Live messages saved while the history query runs are held back, then sent
        # after it (minus those the history already holds), so nothing is lost,
        # doubled or out of order.
        self.held = []
        return defer_to_django(recent, HISTORY).addCallback(self.replay)

    def replay(self, history):
        known = {m["id"] for m in history}
        later = sorted((m for m in self.held if m["id"] not in known), key=lambda m: m["id"])
        self.held = None
        for message in history + later:
            self.send(message)

    def deliver(self, message):
        if self.held is not None:
            self.held.append(message)
        else:
            self.send(message)

    def on_message(self, message):
        if isinstance(message, bytes):
            self.close(1003, "send JSON text: {\"name\": ..., \"text\": ...}")
            return None
        name, text = parse(message)
        if not text:
            return None
        return self.saving.run(defer_to_django, save, name, text).addCallback(self.announce)

    @classmethod
    def announce(cls, message):
        for member in cls.connections():
            member.deliver(message)


class WebUI(applet.WebUI):
    websocket_resources = [ChatRoom]


web = WebUI()
