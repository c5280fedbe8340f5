"""``create_app(config, pm)``: the aiohttp application. Routes (each a codec over the one
pipeline), the error schema on every route, request ids and CORS, the shared client
session, and config reload.

There is no middleware: aiohttp's middleware chain costs about 25 us per request
(measured on a trivial handler, 94 -> 127 us CPU per request at c=32), a tenth of what the
gateway spends. Each route answers errors in the schema itself (plugin routes are wrapped
when the app is built), a catch-all route answers 404/405 and CORS preflights, and
``on_response_prepare`` stamps the request id and CORS headers on every response."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from ferro.config import Config
from ferro.errors import GatewayError, RequestTooLargeError
from ferro.events import Events
from ferro.gateway import Gateway
from ferro.pipeline import REQUEST_ID, Pipeline, request_id
from ferro.plugins import FerroPluginManager
from ferro.registry import Registry, build_registry
from ferro.routes.openai import CODECS, json_error

__all__ = ["PIPELINE", "REQUEST_ID", "create_app", "reload"]

log = logging.getLogger("ferro.app")

PIPELINE = web.AppKey("ferro_pipeline", Pipeline)
PLUGIN_MANAGER = web.AppKey("ferro_plugin_manager", FerroPluginManager)
REGISTRY = web.AppKey("ferro_registry", Registry)
ENV = web.AppKey("ferro_env", Mapping)
SESSION = web.AppKey("ferro_session", aiohttp.ClientSession)

#: Routes other packages add, for the 404 of a gateway that does not have them.
_ROUTES_ELSEWHERE = {
    "/metrics": "ferro-metrics-prometheus",
    "/dashboard": "ferro-dashboard",
    "/admin": "ferro-admin",
}


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
    gateway = Gateway(config, registry, env)  # its providers get the session at start-up
    app = web.Application(client_max_size=config.server.max_body_size)
    app[PIPELINE] = Pipeline(gateway, Events(pm))
    app[PLUGIN_MANAGER] = pm
    app[REGISTRY] = registry
    app[ENV] = env
    for path, codec in CODECS.items():
        app.router.add_post(path, _route(codec))  # the pipeline answers errors itself
    app.router.add_get("/v1/models", json_errors(list_models))
    app.router.add_get("/health", json_errors(health))
    app.cleanup_ctx.append(_client_session)
    app.on_response_prepare.append(_response_headers)
    ours = {id(route) for route in app.router.routes()}
    pm.hook.configure_app(app=app, config=config)
    app[PIPELINE].events.resolve(pm)  # listeners a plugin registered for this app count too
    for route in app.router.routes():  # routes plugins added answer in the schema too
        if id(route) not in ours and hasattr(route, "_handler"):
            route._handler = json_errors(route._handler)  # type: ignore[attr-defined]
    app.router.add_route("*", "/{tail:.*}", _unrouted)  # last: every other route first
    return app


def reload(app: web.Application, config: Config) -> Gateway:
    """Validate and build ``config``, then serve it: new requests use it at once, requests
    in flight finish on the old one. Breaker state carries over for targets that did not
    change. Raises ConfigError (the old config keeps serving)."""
    pipeline = app[PIPELINE]
    gateway = Gateway(config, app[REGISTRY], app[ENV], app[SESSION],
                      previous=pipeline.gateway)
    pipeline.swap(gateway)
    log.info("config reloaded (strategy %s; providers: %s)", config.strategy.mode,
             ", ".join(gateway.providers))
    return gateway


def _route(codec: Any) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[PIPELINE].serve(request, codec)

    return handler


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )
    app[SESSION] = session
    pipeline = app[PIPELINE]
    pipeline.gateway.bind(session)
    yield
    await pipeline.events.drain()
    await pipeline.gateway.aclose()
    await session.close()


# --- errors, request ids, CORS ------------------------------------------------------------


def json_errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``handler`` answering what it raises in the one error schema."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as exc:
            return json_error(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(request, exc)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return json_error(GatewayError("internal error; the details have been logged"))

    return answer


async def _unrouted(request: web.Request) -> web.Response:
    """What no route serves: a CORS preflight (204), a wrong method (405), else a 404 that
    says what is served."""
    if request.method == "OPTIONS" and request.headers.get("Origin") \
            and request.app[PIPELINE].gateway.cors:
        return web.Response(status=204)
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        return _http_error(request, web.HTTPMethodNotAllowed(request.method, allowed))
    return _http_error(request, web.HTTPNotFound())


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's HTTP errors (404, 405, 413, ...) in the one error schema."""
    if exc.status == 413:
        return json_error(RequestTooLargeError.from_http(exc))
    headers: dict[str, str] = {}
    if exc.status == 404:
        code, message = "not_found", _not_found(request)
    elif exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        code = "method_not_allowed"
        message = f"{request.method} is not allowed on {request.path} (allowed: " \
                  f"{', '.join(allowed)})"
        headers["Allow"] = ", ".join(allowed)
    else:
        code = "http_error"
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") \
            else exc.reason
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    return json_error(GatewayError(message, status=exc.status, type=kind, code=code,
                                   retryable=False, headers=headers))


def _not_found(request: web.Request) -> str:
    for prefix, package in _ROUTES_ELSEWHERE.items():
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return (f"{request.path} is not served here: install {package} to add it "
                    f"(`pip install {package}`)")
    served = sorted({f"{route.method} {route.resource.canonical}"
                     for route in request.app.router.routes()
                     if route.resource is not None and route.method not in ("HEAD", "*")})
    return f"no route {request.method} {request.path}; this gateway serves: {', '.join(served)}"


async def _response_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Request-ID"] = request_id(request)
    cors = request.app[PIPELINE].gateway.cors
    origin = request.headers.get("Origin")
    if cors and origin and ("*" in cors or origin in cors):
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


# --- routes outside the pipeline --------------------------------------------------------------


async def list_models(request: web.Request) -> web.Response:
    gateway = request.app[PIPELINE].gateway
    gateway.authenticate(request.headers.get("Authorization"))
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
    gateway = request.app[PIPELINE].gateway
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
                                 "models": len(provider.static_models()),
                                 "operations": sorted(provider.operations)}
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
