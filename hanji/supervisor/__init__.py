"""The supervising process of ``hanji serve --workers N``: neither reactor nor Django.

``hanji serve --workers N`` (or ``--reload``) runs this small process instead of a
server. It applies the migrations once (a ``hanji manage migrate`` child, unless
``--no-migrate``), picks one access token and one Django secret key for all workers,
binds the listening socket once, starts the message bus relay, and starts N fresh
worker interpreters (``subprocess``, never a fork of this process) that inherit the
socket and serve it with ``reactor.adoptStreamPort``; each worker is a full Hanji
server. The supervisor then restarts workers that die (with back-off) or stop
answering their heartbeat, drains them all on SIGTERM/SIGINT, replaces them one by
one on SIGHUP (rolling restart), and adds or removes one on SIGTTIN/SIGTTOU, as
gunicorn's arbiter does.

Modules:

- :mod:`~hanji.supervisor.arbiter`: the supervisor's loop (main thread of the
  supervisor process; runs no Twisted reactor and imports no Django; the bus
  relay and the log writer are its only other threads).
- :mod:`~hanji.supervisor._listen`: binding the shared listening socket.
- :mod:`~hanji.supervisor._worker`: one worker process seen from the supervisor.
- :mod:`~hanji.supervisor._logs`: ``hanji.log`` written by all, rotated by the
  supervisor alone.
- :mod:`~hanji.supervisor.link`: the worker's end of its pipe to the supervisor
  (ready message, heartbeat); runs in a worker, on its reactor thread.
"""

from __future__ import annotations

from hanji.supervisor.arbiter import run

__all__ = ["run"]
