"""Peer: the trivial resource on aiohttp's own server (asyncio), access log off.

    python aiohttp_server.py PORT

GET /res/benchapp/hello answers benchapp's bytes; nothing else is routed.
"""

import sys

from aiohttp import web

HELLO = b"Hello, world!\n"  # the same bytes as benchapp.payload.HELLO


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/html")


def main() -> None:
    app = web.Application()
    app.router.add_get("/res/benchapp/hello", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
