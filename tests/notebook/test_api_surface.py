"""The notebook API behind ``hanji``'s lazy public names."""

from __future__ import annotations

import inspect


def test_every_public_name_resolves_to_the_notebook_api() -> None:
    """hanji.__all__ is exactly hanji.notebook.api.__all__ plus the exceptions, the extension hooks, the bus's publish/subscribe and export, and each name resolves (ws lazily)."""
    import hanji
    from hanji import _exceptions
    from hanji.notebook import api, extension
    from hanji.server import bus

    for name in hanji.__all__:
        assert callable(getattr(hanji, name)), name
    assert hanji.get is api.get and hanji.activate is api.activate and hanji.ws is api.ws
    assert hanji.applets is api.applets
    exceptions = {n for n in hanji.__all__ if isinstance(getattr(hanji, n), type)}
    assert all(issubclass(getattr(hanji, n), _exceptions.HanjiError) for n in exceptions)
    assert {"HanjiError", "HTTPStatusError", "AppletActivationError", "WebSocketClosed"} <= exceptions
    assert hanji.publish is bus.publish and hanji.subscribe is bus.subscribe
    assert hanji.publish.__doc__ and hanji.subscribe.__doc__
    from hanji.exporting import kernel

    assert hanji.export is kernel.export and hanji.export.__doc__
    assert sorted(set(hanji.__all__) - {"load_ipython_extension", "unload_ipython_extension", "publish", "subscribe",
                                          "export"} - exceptions) == api.__all__
    assert hanji.__all__ == sorted(hanji.__all__)
    assert api.__all__ == sorted(api.__all__)
    assert extension.load.__doc__ and extension.unload.__doc__


def test_sync_and_async_twins_share_their_signature() -> None:
    """get/aget, post/apost and request/arequest take the same arguments, the twin being a coroutine."""
    from hanji.notebook import api

    for sync, twin in (("get", "aget"), ("post", "apost"), ("request", "arequest")):
        s, a = getattr(api, sync), getattr(api, twin)
        assert inspect.iscoroutinefunction(a) and not inspect.iscoroutinefunction(s)
        assert inspect.signature(s).parameters.keys() == inspect.signature(a).parameters.keys()
