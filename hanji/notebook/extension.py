"""``%load_ext hanji`` and ``%unload_ext hanji``; cell thread.

Loading runs three phases (in :meth:`hanji.notebook.session.Session.start`): the
reactor in crochet's thread, renamed ``HanjiReactor``; Django configured and migrated
on the cell thread; the server started on the reactor, on 127.0.0.1:8899 (or
``HANJI_PORT``), or the next free port. Then the cell hooks and ``%hanji`` are
registered and a one-line banner shows the link and the time it took. Loading again
is a no-op with a message. Unloading stops listening (the port is free at once) and
deactivates the applets; the reactor keeps running, so loading again works.
"""

from __future__ import annotations

from typing import Any

from hanji.notebook import hooks as _hooks
from hanji.notebook import live, magics
from hanji.notebook.display import banner, display_live, public_base, stopped_note, with_query
from hanji.notebook.session import get_session

_cell_hooks: list[_hooks.CellHooks] = []


def _banner_text(session: Any, seconds: float, wanted: int) -> str:
    from hanji import __version__

    server = session.server
    active = len(server.registry.active())
    failed = len(server.registry.failed())
    parts = [f"Hanji {__version__} serves {{url}}"]
    skipped = list(getattr(server, "skipped_ports", []) or [])
    if skipped:
        taken = ", ".join(map(str, skipped))
        parts.append(f"port{'s' if len(skipped) > 1 else ''} {taken} {'were' if len(skipped) > 1 else 'was'} "
                     f"taken, so it listens on {server.port}")
    applets = f"{active} applet{'s' if active != 1 else ''} active"
    if failed:
        applets += f", {failed} failed (see the errors below)"
    parts.append(applets)
    parts.append(f"started in {seconds:.2f} s")
    return " · ".join(parts) + " · %hanji status"


def _start(shell: Any) -> None:
    """Start the session with the hooks installed first, so that errors of the
    packaged applets show under this cell; print the banner."""
    session = get_session()
    if not _cell_hooks:
        _cell_hooks.append(_hooks.CellHooks(shell))
    cell_hooks = _cell_hooks[0]
    cell_hooks.install()
    try:
        info = session.start()
    except BaseException:
        cell_hooks.uninstall()
        raise
    magics.register(shell)
    _arm_exit(session)
    if info is not None:
        from hanji.server.security.access import issue_ticket

        url = public_base(session.url, session.server.port) + "/"
        # A one-time ticket, not the token: the banner is saved with the notebook.
        ticket = issue_ticket(session.token) if session.token else None
        display_live(banner(url, _banner_text(session, info.seconds, info.wanted_port),
                            href=with_query(url, "ticket", ticket)),
                     stopped_note(f"the server at {url}"), session.on_stop)


_exit_armed: list[bool] = []


def _arm_exit(session: Any) -> None:
    """Once per process: stop Hanji when the kernel exits (an atexit handler that
    runs before crochet stops the reactor, which it registered earlier), and let a
    SIGTERM cut the drain short rather than kill the process before the applets
    are deactivated. Cell thread (the kernel's main thread, for the signal)."""
    if _exit_armed:
        return
    _exit_armed.append(True)
    import atexit
    import signal
    import threading

    atexit.register(session.stop_at_exit)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, session.on_sigterm)


def load(shell: Any) -> None:
    """Start Hanji in this kernel (``%load_ext hanji``); a second load prints a
    message and does nothing. Cell thread."""
    session = get_session()
    if session.running:
        print(f"Hanji is already loaded: {session.url}/ (%hanji status shows it; "
              "%unload_ext hanji stops it).")
        return
    if live.forget not in session.on_stop:
        session.on_stop.append(live.forget)
    _start(shell)


def start_again(shell: Any) -> None:
    """Start Hanji again after ``%hanji stop`` (``%hanji start``); cell thread."""
    session = get_session()
    if session.running:
        print(f"Hanji is already running: {session.url}/")
        return
    _start(shell)


def stop() -> None:
    """Stop listening and deactivate the applets, keeping the reactor and the
    magics (``%hanji stop``); cell thread."""
    session = get_session()
    if not session.stop():
        print("Hanji is not running.")
        return
    print(f"Hanji stopped: port {session.server.port} is free. %hanji start listens again.")


def unload(shell: Any) -> None:
    """Stop listening, deactivate the applets and unregister the hooks and magics
    (``%unload_ext hanji``); the reactor keeps running. Cell thread."""
    session = get_session()
    stopped = session.stop()
    for cell_hooks in _cell_hooks:
        cell_hooks.show_new_errors()  # what on_deactivate reported
        cell_hooks.uninstall()
    magics.unregister(shell)
    if stopped:
        print(f"Hanji unloaded: port {session.server.port} is free; %load_ext hanji starts it again.")
