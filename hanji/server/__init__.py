"""The reactor side of Hanji: runtime, site and routing, the Django bridge, websockets.

Nothing here is imported by ``import hanji``; the server starts from the CLI
(``hanji serve``) or from the notebook extension (``%load_ext hanji``).
"""
