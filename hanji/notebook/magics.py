"""The ``%hanji`` line magic; every action runs on the cell thread.

    %hanji status            reactor thread, URL, applets (version, last error), reactor stalls
    %hanji applets           the applets and their resources
    %hanji routes            the routing table, Twisted/Django overlaps marked
    %hanji errors [ID]       recorded errors with tracebacks (--clear forgets them)
    %hanji stop              stop listening and deactivate the applets (reactor kept)
    %hanji start             listen again and activate the packaged applets
    %hanji url [ID [PATH]]   the site's URL, or a resource's
    %hanji migrate [ID]      create or update tables (--reset for cell models)
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

ACTIONS = ("status", "applets", "routes", "errors", "stop", "start", "url", "migrate")


@magics_class
class HanjiMagics(Magics):
    """The ``%hanji`` magic."""

    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=ACTIONS, help="what to do (default: status)")
    @argument("applet", nargs="?", default=None, help="applet id (errors, url, migrate)")
    @argument("path", nargs="?", default="", help="resource path (url)")
    @argument("--clear", action="store_true", help="errors: forget the recorded errors after showing them")
    @argument("--reset", action="store_true", help="migrate: drop and recreate a cell-defined applet's tables")
    @line_magic
    def hanji(self, line: str) -> Any:
        """Inspect and control Hanji in this kernel: %hanji status|applets|routes|
        errors|stop|start|url|migrate."""
        from hanji.notebook import api
        from hanji.notebook.extension import start_again, stop

        args = parse_argstring(self.hanji, line)
        action = args.action
        if args.applet is not None and action not in ("errors", "url", "migrate"):
            from IPython.core.error import UsageError

            raise UsageError(f"%hanji {action} takes no applet id; try %hanji {action}.")
        if action == "status":
            return api.status()
        if action == "applets":
            return api.applets()
        if action == "routes":
            return api.routes()
        if action == "errors":
            return api.errors(args.applet, clear=args.clear)
        if action == "stop":
            stop()
            return None
        if action == "start":
            start_again(self.shell)
            return None
        if action == "url":
            print(api.url(args.applet, args.path) if args.applet else api.url())
            return None
        return api.migrate(args.applet, reset=args.reset)


def register(shell: Any) -> None:
    """Register ``%hanji`` with ``shell`` (idempotent)."""
    shell.register_magics(HanjiMagics)


def unregister(shell: Any) -> None:
    """Remove ``%hanji`` from ``shell``."""
    shell.magics_manager.magics["line"].pop("hanji", None)
