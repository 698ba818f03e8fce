"""Peer: the websocket endpoints of figure 5 on the `websockets` library (asyncio).

    python websockets_server.py PORT

/ws/benchapp/echo sends every message back; /ws/benchapp/fanout sends a text message
starting with "broadcast:" to every open fanout connection with the library's own
``broadcast()`` (which writes to each connection at once, without waiting), then
"took:<ms>" to the sender. A plain GET /res/benchapp/hello answers 200 (readiness).
"""

import asyncio
import sys
import time
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, broadcast, serve

FANOUT: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    if path == "/ws/benchapp/echo":
        async for message in ws:
            await ws.send(message)
    elif path == "/ws/benchapp/fanout":
        FANOUT.add(ws)
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("broadcast:"):
                    t0 = time.perf_counter()
                    broadcast(FANOUT, message)
                    await ws.send(f"took:{(time.perf_counter() - t0) * 1000:.3f}")
        finally:
            FANOUT.discard(ws)


def process_request(connection, request):
    """Answer plain HTTP GETs (the harness's readiness check) without an upgrade."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return connection.respond(HTTPStatus.OK, "Hello, world!\n")
    return None


async def main() -> None:
    port = int(sys.argv[1])
    async with serve(handler, "127.0.0.1", port, process_request=process_request, ping_interval=None,
                     compression=None, max_queue=None):
        print(f"websockets serves ws://127.0.0.1:{port}/", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main())
