"""What an applet opens through the reactor is tracked: any kind of port, any call form."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

from hanji.core._context import OpenedThings, run_as
from hanji.server import tracking


class _Reactor:
    """A stand-in reactor whose opening methods return a marker and keep their argument."""

    def listenTCP(self, port: int, factory: Any, **kw: Any) -> Any:
        return SimpleNamespace(kind="tcp", factory=factory)

    def listenUDP(self, port: int, protocol: Any, **kw: Any) -> Any:
        return SimpleNamespace(kind="udp", protocol=protocol)

    def connectTCP(self, host: str, port: int, factory: Any, **kw: Any) -> Any:
        return SimpleNamespace(kind="connector", factory=factory)

    def callLater(self, delay: float, f: Any, *args: Any) -> Any:
        return SimpleNamespace(kind="call")

    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


def test_udp_ports_and_keyword_factories_are_tracked() -> None:
    """listenUDP takes a DatagramProtocol (no buildProtocol): it is recorded, not
    wrapped (it raised AttributeError); a factory given by keyword is wrapped too."""
    reactor = _Reactor()
    tracking.install(reactor)
    applet = SimpleNamespace(_hanji_opened=OpenedThings())
    udp = run_as(applet, reactor.listenUDP, 0, DatagramProtocol())
    factory = Factory.forProtocol(Protocol)
    tcp = run_as(applet, reactor.listenTCP, 0, factory=factory)
    assert applet._hanji_opened.ports == [udp, tcp]
    built = factory.buildProtocol(None)
    assert built in applet._hanji_opened.protocols  # connections on the port close with the applet
