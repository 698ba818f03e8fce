"""chat: a websocket chat room whose history lives in the database.

Messages travel as JSON text ``{"name": ..., "text": ...}`` on ``/ws/chat/room``; each
one is saved (in the Django pool) and then sent to every member; a new member first
gets the last messages from the database.
"""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Chat"
    description = "A chat room over a websocket; its history is kept in the database."


applet = Applet()
