"""Baseline: a bare Starlette JSON endpoint on the same server stack as Lamina (uvicorn with
Lamina's protocol class, httptools, uvloop)."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lamina.api.http import CoalescingHttpToolsProtocol


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/json")


app = Starlette(routes=[Route("/hello", hello), Route("/echo", echo, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        access_log=False,
        log_level="warning",
    )
