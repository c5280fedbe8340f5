"""The floor: the least a Python (aiohttp) proxy can do per request, to compare the gateway with.

It forwards ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and ``GET /v1/models`` to
the upstream with the body and a few headers unchanged, and relays the answer: a JSON body
whole, an SSE body piece by piece as it arrives. No parsing, no auth, no logging. Like the
gateway it serves with aiohttp on uvloop when uvloop is installed (``--no-uvloop`` to
compare).

    python bench/floor_proxy.py --port 4100 --upstream http://127.0.0.1:18080
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

FORWARD = ("Authorization", "Content-Type", "Accept")
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def session_ctx(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(
        app[UPSTREAM], connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        auto_decompress=False, skip_auto_headers=("User-Agent",))
    yield
    await app[SESSION].close()


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {h: request.headers[h] for h in FORWARD if h in request.headers}
    async with request.app[SESSION].request(request.method, request.path, data=body or None,
                                            headers=headers) as up:
        ctype = up.headers.get("Content-Type", "application/json")
        if ctype.startswith("text/event-stream"):
            resp = web.StreamResponse(status=up.status, headers={
                "Content-Type": ctype, "Cache-Control": "no-cache"})
            await resp.prepare(request)
            async for piece in up.content.iter_any():
                await resp.write(piece)
            await resp.write_eof()
            return resp
        return web.Response(status=up.status, body=await up.read(),
                            headers={"Content-Type": ctype})


def main() -> None:
    ap = argparse.ArgumentParser(description="Bare aiohttp pass-through proxy (benchmark floor).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4100)
    ap.add_argument("--upstream", default="http://127.0.0.1:18080")
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    loop = None
    if not a.no_uvloop:
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            pass
    app = web.Application()
    app[UPSTREAM] = a.upstream
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/chat/completions", relay)
    app.router.add_post("/v1/embeddings", relay)
    app.router.add_get("/v1/models", relay)
    web.run_app(app, host=a.host, port=a.port, access_log=None, print=None, backlog=4096,
                loop=loop or asyncio.new_event_loop())


if __name__ == "__main__":
    main()
