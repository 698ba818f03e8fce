"""The ``%hanji`` line magic; every action runs on the cell thread.

    %hanji status            reactor thread, URL, applets (version, last error), reactor stalls
    %hanji applets           the applets and their resources
    %hanji routes            the routing table, Twisted/Django overlaps marked
    %hanji errors [ID]       recorded errors with tracebacks (--clear forgets them)
    %hanji stop              stop listening and deactivate the applets (reactor kept)
    %hanji start             listen again and activate the packaged applets
    %hanji url [ID [PATH]]   the site's URL, or a resource's
    %hanji migrate [ID]      create or update tables (--reset for cell models)
    %hanji watch DIR         reload the applets of DIR when their files change (--stop stops)
    %hanji export NAME DIR   write applet NAME's %%applet cells as the package DIR/NAME (--verify)

``%%applet NAME`` (a cell magic, :mod:`hanji.notebook.cells`) marks the cells of an applet.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

ACTIONS = ("status", "applets", "routes", "errors", "stop", "start", "url", "migrate", "export", "watch")


@magics_class
class HanjiMagics(Magics):
    """The ``%hanji`` magic."""

    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=ACTIONS, help="what to do (default: status)")
    @argument("applet", nargs="?", default=None, help="applet id (errors, url, migrate)")
    @argument("path", nargs="?", default="", help="resource path (url)")
    @argument("--clear", action="store_true", help="errors: forget the recorded errors after showing them")
    @argument("--reset", action="store_true", help="migrate: drop and recreate a cell-defined applet's tables")
    @argument("--stop", action="store_true", help="watch: stop reloading applets from disk")
    @argument("--verify", action="store_true", help="export: serve the package and replay the notebook's requests")
    @line_magic
    def hanji(self, line: str) -> Any:
        """Inspect and control Hanji in this kernel: %hanji status|applets|routes|
        errors|stop|start|url|migrate."""
        from hanji.notebook import api
        from hanji.notebook.extension import start_again, stop

        args = parse_argstring(self.hanji, line)
        action = args.action
        if args.applet is not None and action not in ("errors", "url", "migrate", "export", "watch"):
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
        if action == "watch":
            from hanji.notebook.watch import watch

            return watch(args.applet, stop=args.stop)
        if action == "export":
            from IPython.core.error import UsageError

            from hanji.exporting.kernel import export

            if not args.applet or not args.path:
                raise UsageError("%hanji export NAME DIR: give the applet's name and the applets folder, "
                                 "e.g. %hanji export todo applets")
            return export(args.applet, args.path, verify=args.verify)
        return api.migrate(args.applet, reset=args.reset)


def register(shell: Any) -> None:
    """Register ``%hanji`` and ``%%applet`` with ``shell`` (idempotent)."""
    from hanji.notebook import cells

    shell.register_magics(HanjiMagics)
    cells.register(shell)


def unregister(shell: Any) -> None:
    """Remove ``%hanji`` and ``%%applet`` from ``shell``."""
    from hanji.notebook import cells

    shell.magics_manager.magics["line"].pop("hanji", None)
    cells.unregister(shell)
