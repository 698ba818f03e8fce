"""Reload applets from disk: ``hanji serve --reload`` and ``%hanji watch DIR``.

- :mod:`~hanji.server.reload.watcher`: watchfiles in its own thread (``HanjiReload``);
- :mod:`~hanji.server.reload.changes`: what a batch of changes asks for (pure);
- :mod:`~hanji.server.reload.reimport`: a package imported again (Django pool);
- :mod:`~hanji.server.reload.reloader`: the batches applied (reactor thread).

watchfiles is an optional extra (``pip install 'hanji[reload]'``): importing this
package does not need it; :func:`require_watchfiles` says what to install.
"""

from hanji.server.reload.reloader import Reloader, restart_by_supervisor, watch_server
from hanji.server.reload.watcher import MISSING, WatchfilesMissing, require_watchfiles

__all__ = ["MISSING", "Reloader", "WatchfilesMissing", "require_watchfiles", "restart_by_supervisor", "watch_server"]
