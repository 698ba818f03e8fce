"""Peer: the trivial resource as a Starlette application, served by uvicorn.

    uvicorn starlette_app:app --host 127.0.0.1 --port PORT --no-access-log
"""

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

HELLO = b"Hello, world!\n"  # the same bytes as benchapp.payload.HELLO


async def hello(request):
    return Response(HELLO, media_type="text/html")


app = Starlette(routes=[Route("/res/benchapp/hello", hello)])
