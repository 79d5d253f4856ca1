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


def guarded_app(limit: int) -> web.Application:
    from hivehub.server.middleware import error_middleware

    app = web.Application(middlewares=[error_middleware])
    mount(app, "/sub", Starlette(routes=[Route("/echo", echo, methods=["POST"])]), max_body_bytes=limit)
    return app


async def chunks(parts: list[bytes]):  # type: ignore[no-untyped-def]
    for p in parts:
        yield p
        await asyncio.sleep(0.01)


async def test_a_chunked_body_arrives_whole_not_cut_after_its_first_chunk() -> None:
    async with TestClient(TestServer(make_app())) as client:
        parts = [b"a" * 1000, b"b" * 2000, b"c" * 3000]
        r = await client.post("/sub/echo", data=chunks(parts))  # sent with Transfer-Encoding: chunked
        assert r.status == 201
        assert (await r.json())["len"] == 6000


async def test_a_body_over_the_limit_is_answered_413_declared_or_chunked() -> None:
    async with TestClient(TestServer(guarded_app(4096))) as client:
        r = await client.post("/sub/echo", data=b"x" * 5000)
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "payload_too_large"
        r = await client.post("/sub/echo", data=chunks([b"x" * 3000, b"y" * 3000]))
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "payload_too_large"
        r = await client.post("/sub/echo", data=b"x" * 4096)
        assert r.status == 201


async def test_lifespan_keeps_an_anyio_task_group_entered_and_leaves_it_from_its_own_task() -> None:
    import contextlib

    import anyio

    from hivehub.server.asgi import lifespan

    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def run():  # type: ignore[no-untyped-def]
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep_forever)
            seen.append("entered")
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                seen.append("left")

    app = web.Application()
    lifespan(app, run)
    async with TestClient(TestServer(app)):
        assert seen == ["entered"]
    assert seen == ["entered", "left"]


def test_loopback_url_is_the_socket_the_request_came_in_on() -> None:
    from hivehub.server.asgi import loopback_url

    assert loopback_url({"server": ("127.0.0.1", 4123)}) == "http://127.0.0.1:4123"
    assert loopback_url({"server": ("0.0.0.0", 80)}) == "http://127.0.0.1:80"
    assert loopback_url({"server": ("::1", 9)}) == "http://[::1]:9"


async def test_a_lazy_app_is_built_once_on_the_first_requests_retried_after_a_failure_closed_at_cleanup() -> (
    None
):
    from contextlib import AsyncExitStack

    from hivehub.server.asgi import Lazy

    builds: list[str] = []
    closed: list[str] = []

    async def build(stack: AsyncExitStack):  # type: ignore[no-untyped-def]
        builds.append("build")
        await asyncio.sleep(0.05)  # concurrent first requests wait for this one build
        if len(builds) == 1:
            raise RuntimeError("the SDK is not there")

        async def close() -> None:
            closed.append("closed")

        stack.push_async_callback(close)
        return Starlette(routes=[Route("/echo", echo, methods=["POST"])])

    app = web.Application()
    lazy = Lazy(build)
    mount(app, "/sub", lazy)
    lazy.close_on_cleanup(app)
    async with TestClient(TestServer(app)) as client:
        assert builds == [] and not lazy.built
        assert (await client.post("/sub/echo", data=b"x")).status == 500
        rs = await asyncio.gather(*(client.post("/sub/echo", data=b"x") for _ in range(5)))
        assert [r.status for r in rs] == [201] * 5
        assert builds == ["build", "build"] and lazy.built
    assert closed == ["closed"] and not lazy.built
