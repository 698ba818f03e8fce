"""The reactor side of Hanji: the server and its applets' life, HTTP (``http``), who
may get in (``security``), websockets (``websocket``) and the stall watchdog.

Everything here runs on the reactor thread unless its docstring says otherwise
(``mounting`` builds routes in the Django pool; ``watchdog`` has its own thread).
Nothing here is imported by ``import hanji`` or ``import hanji.core``; the server
starts from the CLI (``hanji serve``) or from the notebook extension
(``%load_ext hanji``). The Django side is :mod:`hanji.django`.
"""
