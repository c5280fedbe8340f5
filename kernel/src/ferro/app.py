"""``create_app(config, pm)``: the aiohttp application. Routes, the one middleware, the shared
client session, and the firing of ``exchange_completed`` after each reply is sent."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ferro.config import Config
from ferro.errors import AuthenticationError, GatewayError, InvalidRequestError, error_body
from ferro.gateway import ChunkStream, Gateway
from ferro.plugins import FerroPluginManager
from ferro.registry import Registry, build_registry
from ferro.sse import DONE, encode_event
from ferro.streaming import StreamAssembler
from ferro.types import ChatChunk, ChatResponse, Exchange, RawFrames, RequestContext, Usage
from ferro.validation import parse_chat_request

__all__ = ["GATEWAY", "create_app"]

log = logging.getLogger("ferro.app")

GATEWAY = web.AppKey("ferro_gateway", Gateway)
CONFIG = web.AppKey("ferro_config", Config)
PLUGIN_MANAGER = web.AppKey("ferro_plugin_manager", FerroPluginManager)
REGISTRY = web.AppKey("ferro_registry", Registry)
SESSION = web.AppKey("ferro_session", aiohttp.ClientSession)
EVENTS = web.AppKey("ferro_events", object)
REQUEST_ID = web.RequestKey("ferro_request_id", str)
API_KEY = web.RequestKey("ferro_api_key", str)

MAX_BACKGROUND_TASKS = 1000
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}


class Events:
    """The ``exchange_completed`` listeners, resolved once, and their bounded background tasks."""

    def __init__(self, pm: FerroPluginManager) -> None:
        self.listeners: list[Callable[..., Any]] = [
            impl.function for impl in pm.hook.exchange_completed.get_hookimpls()
        ]
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0

    def emit(self, exchange: Exchange) -> None:
        for listener in self.listeners:
            try:
                result = listener(exchange=exchange)
            except Exception:
                log.exception("exchange_completed listener %r failed", listener)
                continue
            if inspect.isawaitable(result):
                if len(self.tasks) >= MAX_BACKGROUND_TASKS:
                    self.dropped += 1
                    if inspect.iscoroutine(result):
                        result.close()
                    continue
                task = asyncio.ensure_future(result)
                self.tasks.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("exchange_completed listener failed", exc_info=task.exception())

    async def drain(self) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)


def create_app(
    config: Config,
    pm: FerroPluginManager,
    *,
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
) -> web.Application:
    """Build the gateway app for ``config``. Raises ConfigError before anything is served."""
    env = os.environ if env is None else env
    registry = registry or build_registry(pm)
    gateway = Gateway(config, registry, env)
    app = web.Application(client_max_size=config.server.max_body_size,
                          middlewares=[_middleware(config)])
    app[GATEWAY] = gateway
    app[CONFIG] = config
    app[PLUGIN_MANAGER] = pm
    app[REGISTRY] = registry
    app[EVENTS] = Events(pm)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(_client_session)
    app.on_response_prepare.append(_response_headers(config))
    pm.hook.configure_app(app=app, config=config)
    return app


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )
    app[SESSION] = session
    for provider in app[GATEWAY].providers.values():
        provider.session = session  # type: ignore[attr-defined]
    yield
    await app[EVENTS].drain()  # type: ignore[attr-defined]
    await app[GATEWAY].aclose()
    await session.close()


# --- middleware -------------------------------------------------------------------------------


def json_error(exc: GatewayError) -> web.Response:
    """The error as JSON. ``x-should-retry`` says whether trying again may help: the header
    OpenAI's own API sends, and its SDKs obey."""
    headers = {**exc.headers, "x-should-retry": "true" if exc.retryable else "false"}
    return web.Response(status=exc.status, body=exc.to_json(), content_type=_JSON,
                        headers=headers)


def _http_error(exc: web.HTTPException) -> web.Response:
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status, "http_error")
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    if exc.status == 413:
        message = f"request body too large: {message}"
    body = error_body(message, kind, code)
    return web.Response(status=exc.status, body=orjson.dumps(body), content_type=_JSON)


def _middleware(config: Config) -> Callable[..., Any]:
    keys = {hashlib.sha256(k.encode()).digest() for k in config.server.api_keys if k}
    cors = set(config.server.cors_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        rid = request.headers.get("X-Request-ID")
        if not rid or len(rid) > 128 or not rid.isprintable():
            rid = os.urandom(16).hex()
        request[REQUEST_ID] = rid
        if request.method == "OPTIONS" and cors and request.headers.get("Origin"):
            return web.Response(status=204)
        try:
            if keys and request.path.startswith("/v1/"):
                request[API_KEY] = _authenticate(request, keys)
            return await handler(request)
        except GatewayError as exc:
            return json_error(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(exc)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return json_error(GatewayError("internal error; the details have been logged"))

    return middleware


def _authenticate(request: web.Request, keys: set[bytes]) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing API key: send it as 'Authorization: Bearer <key>'")
    token = token.strip()
    if hashlib.sha256(token.encode()).digest() not in keys:
        raise AuthenticationError("invalid API key")
    return token


def _response_headers(config: Config) -> Callable[..., Any]:
    cors = set(config.server.cors_origins)
    any_origin = "*" in cors

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        rid = request.get(REQUEST_ID)
        if rid:
            response.headers["X-Request-ID"] = rid
        origin = request.headers.get("Origin")
        if cors and origin and (any_origin or origin in cors):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = (
                    request.headers.get("Access-Control-Request-Headers")
                    or "Content-Type, Authorization, X-Request-ID")
                response.headers["Access-Control-Max-Age"] = "86400"
            else:
                response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"

    return on_prepare


# --- routes -----------------------------------------------------------------------------------


async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app
    gateway = app[GATEWAY]
    started = time.time()
    t0 = time.perf_counter()
    chat = parse_chat_request(await request.read())
    gateway.resolve_model(chat)
    ctx = RequestContext(chat, request[REQUEST_ID], api_key=request.get(API_KEY))
    try:
        result = await gateway.complete(ctx)
        if isinstance(result, ChatResponse):
            ctx.response = result
            if gateway.after:  # may refuse the answer (an output guardrail)
                await gateway.run_after(ctx)
    except GatewayError as exc:
        ctx.error = exc
        await gateway.run_on_error(ctx)
        _emit(app, ctx, started, t0, exc.status, "")
        raise
    if isinstance(result, ChatResponse):
        resp = web.Response(body=ctx.response.to_json(), content_type=_JSON)
        await resp.prepare(request)
        await resp.write_eof()
        _emit(app, ctx, started, t0, 200, result.provider)
        return resp
    return await _stream(request, gateway, ctx, result, started, t0)


async def _stream(request: web.Request, gateway: Gateway, ctx: RequestContext,
                  stream: ChunkStream, started: float, t0: float) -> web.StreamResponse:
    resp = web.StreamResponse(headers=_SSE_HEADERS)
    await resp.prepare(request)
    include_usage = ctx.request.include_usage
    assembler = StreamAssembler() if gateway.after else None
    usage: Usage | None = None
    error: GatewayError | None = None
    pending: list[bytes] = []  # frames that arrived together, sent in one write

    def add(chunk: ChatChunk | RawFrames) -> None:
        nonlocal usage
        if isinstance(chunk, RawFrames):
            if assembler is None:
                pending.append(chunk.frames)
            else:
                for one in chunk.chunks():
                    add(one)
            return
        if assembler is not None:
            assembler.add(chunk.as_dict())
        if not chunk.carries_usage():
            pending.extend((b"data: ", chunk.to_json(), b"\n\n"))
            return
        data = chunk.as_dict()
        usage = Usage.from_openai(data["usage"])
        if data.get("choices"):  # usage on a content chunk: split it off, as OpenAI does
            rest = {k: v for k, v in data.items() if k != "usage"}
            pending.extend((b"data: ", orjson.dumps(rest), b"\n\n"))
            data = {**rest, "choices": [], "usage": data["usage"]}
        if include_usage:
            pending.extend((b"data: ", orjson.dumps(data), b"\n\n"))

    try:
        add(stream.first)
        if not stream.first.more:
            await resp.write(b"".join(pending))
            pending.clear()
        if stream.rest is not None:
            async for chunk in stream.rest:
                add(chunk)
                if not chunk.more and pending:
                    await resp.write(b"".join(pending))
                    pending.clear()
        pending.append(DONE)
    except ConnectionResetError:  # the client went away: nothing more to send
        error = InvalidRequestError("the client closed the connection", code="client_closed",
                                    status=499)
        pending.clear()
    except (GatewayError, TimeoutError, aiohttp.ClientError, OSError) as exc:
        error = stream.error_from(exc)
        log.warning("stream %s failed after it started: %s", ctx.request_id, error.message)
        pending.append(encode_event(error.to_json()) + DONE)
    except Exception:  # a bug, here or in a provider: end the stream cleanly all the same
        log.exception("stream %s failed after it started", ctx.request_id)
        error = GatewayError("internal error; the details have been logged")
        pending.append(encode_event(error.to_json()) + DONE)
    finally:
        await stream.close(error)
    if pending:
        with contextlib.suppress(ConnectionResetError):
            await resp.write(b"".join(pending))
    provider = stream.target.name if stream.target else ""
    ctx.usage = usage
    if error is None:
        if assembler is not None:
            ctx.response = assembler.response(provider, usage)
            try:  # the answer is already with the client: a plugin can no longer change it
                await gateway.run_after(ctx)
            except GatewayError as exc:
                log.error("after_request on a sent stream %s failed: %s", ctx.request_id,
                          exc.message)
    else:
        ctx.error = error
        await gateway.run_on_error(ctx)
    _emit(request.app, ctx, started, t0, error.status if error else 200, provider, usage)
    return resp


def _emit(app: web.Application, ctx: RequestContext, started: float, t0: float, status: int,
          provider: str, usage: Usage | None = None) -> None:
    events: Events = app[EVENTS]  # type: ignore[assignment]
    if not events.listeners:
        return
    if usage is None and ctx.response is not None:
        usage = ctx.response.usage
    events.emit(Exchange(
        request_id=ctx.request_id,
        model=ctx.request.body.get("model", ""),
        provider=provider,
        stream=ctx.request.stream,
        status=status,
        started=started,
        duration=time.perf_counter() - t0,
        usage=usage or Usage(),
        error=ctx.error,
        api_key=ctx.api_key,
        metadata=ctx.metadata,
    ))


async def list_models(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    lists = await asyncio.gather(*(p.list_models() for p in gateway.providers.values()))
    seen: set[str] = set()
    data = []
    for models in lists:
        for model in models:
            if model.id not in seen:
                seen.add(model.id)
                data.append(model.to_openai())
    for alias, target in gateway.aliases.items():
        if alias not in seen:
            seen.add(alias)
            data.append({"id": alias, "object": "model", "created": 0, "owned_by": "alias",
                         "alias_for": target})
    return web.json_response({"object": "list", "data": data})


async def health(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    deep = request.query.get("deep", "").lower() in ("1", "true", "yes")
    names = list(gateway.providers)
    providers = [gateway.providers[n] for n in names]
    if deep:
        results = await asyncio.gather(
            *(asyncio.wait_for(p.check_health(), 10) for p in providers), return_exceptions=True)
    else:
        results = [None] * len(providers)
    entries = []
    for name, provider, result in zip(names, providers, results, strict=True):
        entry: dict[str, Any] = {"name": name, "status": "available",
                                 "models": len(provider.static_models())}
        if isinstance(result, BaseException):
            entry["status"] = "unavailable"
            entry["message"] = (result.message if isinstance(result, GatewayError)
                                else f"{type(result).__name__}: {result}")
        entries.append(entry)
    if not entries:
        status = "no_providers"
    elif any(e["status"] != "available" for e in entries):
        status = "degraded"
    else:
        status = "ok"
    return web.json_response({"status": status, "providers": entries},
                             status=200 if status != "no_providers" else 503)
