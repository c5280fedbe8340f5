"""The fake OpenAI upstream of the benchmark: fixed, instant answers, much faster than any gateway.

Two implementations serve the same bytes:

* nginx + the Lua module (``nginx_conf()`` renders the config), used when ``nginx`` and
  ``ngx_http_lua_module.so`` are installed;
* a raw asyncio ``Protocol`` server (``python bench/upstream.py --port N``), used otherwise.
  It parses just enough HTTP/1.1 (keep-alive, pipelining, Content-Length bodies) and writes
  prebuilt responses; uvloop is used when installed.

``POST /v1/chat/completions`` answers a ~700-byte ``chat.completion`` with ``usage``; when the
request body has ``"stream": true`` it answers ``text/event-stream`` (chunked): 21
``chat.completion.chunk`` events (role, 18 content deltas, finish, usage) then
``data: [DONE]``, one write per event and no delay between them. ``POST /v1/embeddings``
answers an OpenAI embeddings list of 8 vectors of 256 floats (~28 KB, see
:func:`embeddings_body`). ``GET /v1/models`` lists two models. Anything else is a JSON 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys

MODEL = "gpt-4o-mini-2024-07-18"
REPLY = ("Hello! This reply comes from the Ferro bench upstream. It is fixed so that "
         "a gateway can be timed without a model behind it.")
# What the load generators look for in every response body (see chat.lua / loadgen.py).
CHECK_CHAT = ("Ferro bench upstream", "total_tokens")
CHECK_STREAM = ("Hello!", '"finish_reason":"stop"', "[DONE]")
EMBED_MODEL = "text-embedding-3-small"
EMBED_INPUTS, EMBED_DIMENSIONS = 8, 256
#: The last float of the last vector: its presence means the whole body came through.
EMBED_LAST = "0.0314159"
CHECK_EMBEDDINGS = ('"object":"embedding"', '"index":7', EMBED_LAST, '"prompt_tokens":64')

_ID = "chatcmpl-ferrobench0123456789abcdefghij"
_CREATED = 1735689600
_USAGE = {"prompt_tokens": 17, "completion_tokens": 26, "total_tokens": 43}


def chat_body() -> bytes:
    body = {
        "id": _ID, "object": "chat.completion", "created": _CREATED, "model": MODEL,
        "choices": [{"index": 0,
                     "message": {"role": "assistant", "content": REPLY, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {**_USAGE,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_ferrobench",
    }
    return json.dumps(body).encode()


def stream_events() -> list[bytes]:
    """Each SSE event as bytes: role, 18 content deltas, finish, usage, [DONE]."""
    words = REPLY.split(" ")
    # 18 content deltas: merge the words into 18 roughly equal pieces.
    n = 18
    pieces = [" ".join(words[i * len(words) // n:(i + 1) * len(words) // n]) for i in range(n)]
    pieces = [p + (" " if i < n - 1 else "") for i, p in enumerate(pieces)]
    assert all(pieces) and "".join(pieces) == REPLY, pieces

    def event(choices: list | None, usage: dict | None = None) -> bytes:
        chunk = {"id": _ID, "object": "chat.completion.chunk", "created": _CREATED,
                 "model": MODEL, "system_fingerprint": "fp_ferrobench", "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    def delta(d: dict, finish: str | None = None) -> list:
        return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

    events = [event(delta({"role": "assistant", "content": "", "refusal": None}))]
    events += [event(delta({"content": p})) for p in pieces]
    events.append(event(delta({}, "stop")))
    events.append(event([], _USAGE))
    events.append(b"data: [DONE]\n\n")
    return events


def embeddings_body() -> bytes:
    """An OpenAI embeddings answer: 8 inputs x 256 floats, compact JSON (as OpenAI sends it).

    8 inputs is a small batch of the kind a retrieval pipeline sends while indexing (one
    document's chunks); 256 is the smallest ``dimensions`` commonly asked of the
    ``text-embedding-3`` models. Written as OpenAI writes floats (about 10 decimals, ~13
    bytes a number) the body is ~28 KB: a gateway that does not relay it byte for byte pays
    for parsing and writing 2048 floats, the real cost of an embeddings answer. The full
    1536 dimensions would be ~6 times that, and time JSON float parsing alone.
    """
    seed = 0x2545F491
    data = []
    for i in range(EMBED_INPUTS):
        vector = []
        for _ in range(EMBED_DIMENSIONS):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            value = round((seed / 0x7FFFFFFF - 0.5) * 0.2, 10)
            # no number below 1e-3: Python and orjson write those in different notations
            vector.append(value if abs(value) >= 1e-3 else value + 0.002)
        data.append({"object": "embedding", "index": i, "embedding": vector})
    data[-1]["embedding"][-1] = float(EMBED_LAST)
    body = {"object": "list", "data": data, "model": EMBED_MODEL,
            "usage": {"prompt_tokens": 64, "total_tokens": 64}}
    return json.dumps(body, separators=(",", ":")).encode()


def models_body() -> bytes:
    return json.dumps({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1721172741, "owned_by": "system"}
        for m in ("gpt-4o-mini", "gpt-4o")]}).encode()


NOT_FOUND = b'{"error":{"message":"bench upstream: unknown path","type":"invalid_request_error"}}'


# --- nginx + Lua -----------------------------------------------------------------------------

LUA_MODULE_DIRS = ("/usr/share/nginx/modules", "/usr/lib/nginx/modules",
                   "/usr/local/nginx/modules", "/usr/local/openresty/nginx/modules")


def lua_modules() -> list[str] | None:
    """load_module paths for the Lua module (plus NDK when it is a separate module), or None."""
    for d in LUA_MODULE_DIRS:
        lua = os.path.join(d, "ngx_http_lua_module.so")
        if os.path.exists(lua):
            ndk = os.path.join(d, "ndk_http_module.so")
            return ([ndk] if os.path.exists(ndk) else []) + [lua]
    return None


def nginx_conf(work: str, port: int, modules: list[str]) -> str:
    """Write the bodies to ``work`` and return an nginx.conf for a one-worker fake upstream."""
    os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
    with open(os.path.join(work, "chat.json"), "wb") as f:
        f.write(chat_body())
    with open(os.path.join(work, "stream.sse"), "wb") as f:
        f.write(b"".join(stream_events()))
    with open(os.path.join(work, "models.json"), "wb") as f:
        f.write(models_body())
    with open(os.path.join(work, "embeddings.json"), "wb") as f:
        f.write(embeddings_body())
    # init_by_lua runs in the master: the files are read before any worker starts
    loads = "\n".join(f"load_module {m};" for m in modules)
    t = os.path.join(work, "tmp")
    return f"""{loads}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 16384; multi_accept on; }}
http {{
  access_log off;
  server_tokens off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  client_body_buffer_size 1m;
  client_max_body_size 16m;
  client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fcgi;
  uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
  lua_code_cache on;
  init_by_lua_block {{
    local function slurp(p)
      local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s
    end
    CHAT = slurp("{work}/chat.json")
    MODELS = slurp("{work}/models.json")
    EMBEDDINGS = slurp("{work}/embeddings.json")
    EVENTS = {{}}
    for ev in slurp("{work}/stream.sse"):gmatch("data: .-\\n\\n") do EVENTS[#EVENTS + 1] = ev end
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /v1/models {{
      default_type application/json;
      content_by_lua_block {{ ngx.print(MODELS) }}
    }}
    location = /v1/chat/completions {{
      content_by_lua_block {{
        if ngx.req.get_method() ~= "POST" then return ngx.exit(405) end
        ngx.req.read_body()
        local b = ngx.req.get_body_data()
        if not b then
          local fn = ngx.req.get_body_file()
          if fn then local f = io.open(fn, "rb"); b = f:read("*a"); f:close() end
        end
        if b and b:find('"stream"%s*:%s*true') then
          ngx.header["Content-Type"] = "text/event-stream; charset=utf-8"
          ngx.header["Cache-Control"] = "no-cache"
          for i = 1, #EVENTS do ngx.print(EVENTS[i]); ngx.flush(false) end
        else
          ngx.header["Content-Type"] = "application/json"
          ngx.header["Content-Length"] = #CHAT
          ngx.print(CHAT)
        end
      }}
    }}
    location = /v1/embeddings {{
      content_by_lua_block {{
        if ngx.req.get_method() ~= "POST" then return ngx.exit(405) end
        ngx.req.read_body()
        ngx.header["Content-Type"] = "application/json"
        ngx.header["Content-Length"] = #EMBEDDINGS
        ngx.print(EMBEDDINGS)
      }}
    }}
    location / {{ default_type application/json; return 404 '{NOT_FOUND.decode()}'; }}
  }}
}}
"""


# --- raw asyncio server ----------------------------------------------------------------------

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')


def _response(status: str, ctype: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nServer: ferro-bench\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Upstream(asyncio.Protocol):
    CHAT = _response("200 OK", "application/json", chat_body())
    MODELS = _response("200 OK", "application/json", models_body())
    EMBEDDINGS = _response("200 OK", "application/json", embeddings_body())
    MISSING = _response("404 Not Found", "application/json", NOT_FOUND)
    BAD = _response("400 Bad Request", "application/json",
                    b'{"error":{"message":"bench upstream: bad request"}}')
    STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nServer: ferro-bench\r\n"
                   b"Content-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
    _events = [_chunk(e) for e in stream_events()]
    # one write per event, like a provider flushing each token; the last one ends the body
    STREAM = [STREAM_HEAD + _events[0], *_events[1:-1], _events[-1] + b"0\r\n\r\n"]

    __slots__ = ("buf", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        write = self.transport.write
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            length = 0
            i = head.find(b"ength:")  # Content-Length / content-length
            if i < 0:
                i = head.find(b"ENGTH:")
            if i > 0:
                j = head.find(b"\r\n", i)
                length = int(head[i + 6:j if j > 0 else len(head)])
            elif b"chunked" in head.lower():  # not supported: no client here sends it
                write(self.BAD)
                self.transport.close()
                return
            if len(buf) < end + 4 + length:
                break
            body = buf[end + 4:end + 4 + length]
            buf = buf[end + 4 + length:]
            if head.startswith(b"POST /v1/chat/completions "):
                if _STREAM_RE.search(body):
                    for part in self.STREAM:
                        write(part)
                else:
                    write(self.CHAT)
            elif head.startswith(b"POST /v1/embeddings "):
                write(self.EMBEDDINGS)
            elif head.startswith(b"GET /v1/models "):
                write(self.MODELS)
            else:
                write(self.MISSING)
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        self.buf = b""


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=4096, reuse_address=True)
    print(f"bench upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description="Fake OpenAI upstream (raw asyncio).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    run = asyncio.run
    if not a.no_uvloop:
        try:
            import uvloop
            run = uvloop.run
        except (ImportError, AttributeError):
            pass
    try:
        run(serve(a.host, a.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
