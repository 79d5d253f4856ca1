"""The ASGI mount: a Starlette app served under a path of an aiohttp app, with the
request body, the query, streamed responses and the client's disconnect carried through."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from hivehub.server.asgi import mount

GONE = asyncio.Event()


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "path": request.url.path,
            "root": request.scope["root_path"],
            "q": dict(request.query_params),
            "len": len(body),
            "ctype": request.headers.get("content-type"),
        },
        status_code=201,
    )


async def stream(request: Request) -> StreamingResponse:
    async def gen():  # type: ignore[no-untyped-def]
        try:
            for i in range(1000):
                yield f"data: {i}\n\n"
                await asyncio.sleep(0.01)
        finally:
            GONE.set()

    return StreamingResponse(gen(), media_type="text/event-stream")


def make_app() -> web.Application:
    app = web.Application()
    star = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/stream", stream)])
    mount(app, "/sub", star)
    return app


async def test_body_query_status_and_headers_pass_through() -> None:
    async with TestClient(TestServer(make_app())) as client:
        big = b"x" * 300_000
        r = await client.post("/sub/echo?a=1&b=two", data=big, headers={"Content-Type": "text/plain"})
        assert r.status == 201
        got = await r.json()
        assert got == {
            "path": "/sub/echo",
            "root": "/sub",
            "q": {"a": "1", "b": "two"},
            "len": len(big),
            "ctype": "text/plain",
        }
        r = await client.get("/sub/nowhere")
        assert r.status == 404


async def test_a_streamed_response_arrives_in_parts_and_a_leaving_client_ends_it() -> None:
    GONE.clear()
    async with TestClient(TestServer(make_app())) as client:
        r = await client.get("/sub/stream")
        assert r.headers["Content-Type"].startswith("text/event-stream")
        first = await r.content.readuntil(b"\n\n")
        second = await r.content.readuntil(b"\n\n")
        assert (first, second) == (b"data: 0\n\n", b"data: 1\n\n")
        r.close()  # the client leaves mid-stream
        await asyncio.wait_for(GONE.wait(), 5)
