"""``create_app(config, pm)``: the aiohttp application. Routes (each a codec over the one
pipeline), the error schema on every route, the edge checks and API keys, request ids and
CORS, the shared client session, and config reload.

There is no middleware: aiohttp's middleware chain costs about 25 us per request
(measured on a trivial handler, 94 -> 127 us CPU per request at c=32), a tenth of what the
gateway spends. Each route answers errors in the schema itself and runs the checks of
:class:`ferro.edge.Edge` (the ``Host``; on JSON routes, the body's type), then, unless it
is public, the API key check; plugin routes are wrapped the same way when the app is built.
A catch-all route answers 404/405 and CORS preflights. Every response is stamped with the
request id, ``Server`` and CORS headers: by the pipeline as it writes its replies, and as
any other route's handler returns.

Public routes, answered without an API key when keys are configured: the probes
``/health/live`` and ``/health/ready`` (unless ``server.public_readiness`` is false; the
probes take any ``Host``, since orchestrators call them by address), and plugin routes
marked with :func:`ferro.public_route`."""

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
from ferro.edge import SERVER, Edge, is_public
from ferro.errors import GatewayError, RequestTooLargeError
from ferro.events import Events
from ferro.gateway import Gateway
from ferro.health import Health
from ferro.http_client import HTTPClient
from ferro.keys import KeyRing
from ferro.pipeline import REQUEST_ID, Pipeline, Stamp, request_id
from ferro.plugins import FerroPluginManager
from ferro.proxies import Proxies
from ferro.registry import Registry, build_registry
from ferro.request_log import RequestLogWriter
from ferro.routes.openai import CODECS, json_error
from ferro.storage import Stores, open_stores
from ferro.types import Identity

__all__ = ["EDGE", "ENV", "HEALTH", "PIPELINE", "REQUEST_ID", "REQUEST_LOG", "STORES", "create_app",
           "reload", "request_identity"]

log = logging.getLogger("ferro.app")

PIPELINE = web.AppKey("ferro_pipeline", Pipeline)
PLUGIN_MANAGER = web.AppKey("ferro_plugin_manager", FerroPluginManager)
REGISTRY = web.AppKey("ferro_registry", Registry)
ENV = web.AppKey("ferro_env", Mapping)
SESSION = web.AppKey("ferro_session", aiohttp.ClientSession)
HTTP = web.AppKey("ferro_http", HTTPClient)
EDGE = web.AppKey("ferro_edge", Edge)
HEALTH = web.AppKey("ferro_health", Health)
STORES = web.AppKey("ferro_stores", Stores)
REQUEST_LOG = web.AppKey("ferro_request_log", RequestLogWriter)
IDENTITY = web.RequestKey("ferro_identity", Identity)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
    proxies = Proxies.from_env(env)
    app = web.Application(client_max_size=config.server.max_body_size)
    pipeline = app[PIPELINE] = Pipeline(gateway, Events(pm))
    edge = app[EDGE] = Edge(config.server)
    health = app[HEALTH] = Health(pipeline)
    app[PLUGIN_MANAGER] = pm
    app[REGISTRY] = registry
    app[ENV] = env
    for path, codec in CODECS.items():
        app.router.add_post(path, _codec_route(pipeline, edge, codec))
    app.router.add_get("/v1/models", guarded(list_models))
    app.router.add_get("/health", guarded(health.report))
    app.router.add_get("/health/live", json_errors(health.live))
    app.router.add_get("/health/ready", json_errors(health.ready) if config.server.public_readiness
                       else guarded(health.ready))
    app.cleanup_ctx.append(_storage)  # opened first, closed last
    app.cleanup_ctx.append(functools.partial(_client_session, proxies=proxies))
    ours = {id(route) for route in app.router.routes()}
    pm.hook.configure_app(app=app, config=config)
    pipeline.events.resolve(pm)  # listeners a plugin registered for this app count too
    for route in app.router.routes():  # plugin routes: guarded, answering in the schema
        if id(route) not in ours and hasattr(route, "_handler"):
            handler = route._handler  # type: ignore[attr-defined]
            route._handler = guarded(handler, key=not is_public(handler))  # type: ignore[attr-defined]
    app.router.add_route("*", "/{tail:.*}", _unrouted)  # last: every other route first
    _stamp_responses(app, _stamper(pipeline, health))
    return app


def _stamp_responses(app: web.Application, stamp: Stamp) -> None:
    """Stamp every response: the pipeline's as it writes them, every other route's as its
    handler returns it. aiohttp's ``on_response_prepare`` signal would do it for all, at
    4-8 % of the bare gateway's CPU per request (two runs); it is used only when a plugin
    added middlewares (which may answer without a handler)."""
    if app.middlewares:
        async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
            stamp(request, response)

        app.on_response_prepare.append(on_prepare)
        return
    app[PIPELINE].stamp = stamp
    for route in app.router.routes():
        handler = getattr(route, "_handler", None)
        if handler is not None and not getattr(handler, "pipeline_route", False):
            route._handler = _stamped(handler, stamp)  # type: ignore[attr-defined]


def _stamped(handler: Handler, stamp: Stamp) -> Handler:
    """``handler`` with its response stamped (an HTTP exception it raises too; a response
    it prepared itself has gone out as it was)."""

    @functools.wraps(handler)
    async def stamped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            stamp(request, exc)
            raise
        if not response.prepared:
            stamp(request, response)
        return response

    return stamped


def reload(app: web.Application, config: Config) -> Gateway:
    """Validate and build ``config``, then serve it: new requests use it at once, requests
    in flight finish on the old one. Breaker state carries over for targets that did not
    change. Raises ConfigError (the old config keeps serving)."""
    pipeline = app[PIPELINE]
    gateway = Gateway(config, app[REGISTRY], app[ENV], app[SESSION], http=app[HTTP],
                      previous=pipeline.gateway)
    pipeline.swap(gateway)
    app[EDGE].apply(config.server)
    log.info("config reloaded (strategy %s; providers: %s)", config.strategy.mode,
             ", ".join(gateway.providers))
    return gateway


def reload_file(app: web.Application, config: Config) -> None:
    """Serve ``config``, the config file re-read, unless a plugin's ``config_file_reloaded``
    takes it over (the management API keeps a config set through it in force). Raises
    ConfigError (the config in force keeps serving)."""
    if not app[PLUGIN_MANAGER].hook.config_file_reloaded(app=app, config=config):
        reload(app, config)


def _codec_route(pipeline: Pipeline, edge: Edge, codec: Any) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        # the pipeline runs the edge's checks, then the key's, and answers every refusal
        return await pipeline.serve(request, codec, edge.check_json)

    handler.pipeline_route = True  # type: ignore[attr-defined]  # stamps its own responses
    return handler


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Open the stores the config and environment choose; with a key store, check stored
    keys; with a request-log store, write a row per exchange. At shutdown (after the last
    exchange is out), write what is queued and close them."""
    pipeline = app[PIPELINE]
    stores = app[STORES] = await open_stores(pipeline.gateway.config, app[REGISTRY].storage,
                                             app[ENV])
    writer = None
    try:
        if stores.keys is not None:
            pipeline.keys = KeyRing(stores.keys)
            await pipeline.keys.start(app[ENV])
            pipeline.events.listeners.append(pipeline.keys.record)
        if stores.request_logs is not None:
            writer = app[REQUEST_LOG] = RequestLogWriter(stores.request_logs)
            writer.start()
            pipeline.events.listeners.append(writer.record)
        yield
    finally:
        if writer is not None:
            await writer.aclose()
        if pipeline.keys is not None:
            await pipeline.keys.aclose()
        await stores.close()


#: Seconds an idle upstream connection is kept for the next call.
KEEPALIVE = 60.0


async def _client_session(app: web.Application, proxies: Proxies | None
                          ) -> AsyncIterator[None]:
    """The upstream clients: the gateway's own, for the providers' calls (through the
    environment's ``proxies``), and an aiohttp session, for plugins and for providers built
    without the former."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )
    http = app[HTTP] = HTTPClient(keepalive_timeout=KEEPALIVE, proxies=proxies)
    app[SESSION] = session
    pipeline = app[PIPELINE]
    pipeline.gateway.bind(session, http)
    yield
    await pipeline.events.drain()
    await pipeline.gateway.aclose()
    await http.close()
    await session.close()


# --- errors, keys, request ids, CORS --------------------------------------------------------


def json_errors(handler: Handler) -> Handler:
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


def guarded(handler: Handler, *, key: bool = True) -> Handler:
    """``handler`` behind the edge checks and, when ``key``, the API key (when keys are
    configured; the caller is then ``request_identity(request)``), answering in the one
    error schema."""
    answer = json_errors(handler)

    @functools.wraps(handler)
    async def admit(request: web.Request) -> web.StreamResponse:
        try:
            request.app[EDGE].check(request)
            if key:
                request[IDENTITY] = await request.app[PIPELINE].authenticate(
                    request.headers.get("Authorization"))
        except GatewayError as exc:
            return json_error(exc)
        return await answer(request)

    return admit


def request_identity(request: web.Request) -> Identity | None:
    """The caller of a guarded route (None: no key was needed or sent)."""
    return request.get(IDENTITY)


async def _unrouted(request: web.Request) -> web.Response:
    """What no route serves: a CORS preflight of a route (204), a wrong method (405), else
    a 404 that says what is served. Only the preflight is answered without the API key."""
    try:
        request.app[EDGE].check(request)
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is not request.match_info.route.resource:
                allowed |= (await resource.resolve(request))[1]
        if allowed and request.method == "OPTIONS" and request.headers.get("Origin") \
                and request.app[PIPELINE].gateway.cors:
            return web.Response(status=204)
        await request.app[PIPELINE].authenticate(request.headers.get("Authorization"))
    except GatewayError as exc:
        return json_error(exc)
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


def _stamper(pipeline: Pipeline, health: Health) -> Stamp:
    def stamp(request: web.Request, response: web.StreamResponse) -> None:
        """Every response: its request id, the neutral ``Server``; ``Connection: close``
        once the gateway is shutting down; CORS headers when CORS is configured."""
        headers = response.headers
        headers["X-Request-ID"] = request_id(request)
        headers["Server"] = SERVER
        if health.draining:
            response.force_close()
            headers["Connection"] = "close"
        cors = pipeline.gateway.cors
        if cors:
            _cors(request, headers, cors)

    return stamp


def _cors(request: web.Request, headers: Any, cors: frozenset[str]) -> None:
    """CORS headers for an allowed ``Origin`` (any but ``null`` when ``"*"`` is listed).
    ``Vary: Origin`` goes on every response, so that no cache serves one origin's answer
    to another."""
    vary = headers.get("Vary")
    headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    origin = request.headers.get("Origin")
    if not origin or not (origin in cors or ("*" in cors and origin != "null")):
        return
    headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        headers["Access-Control-Allow-Headers"] = (
            request.headers.get("Access-Control-Request-Headers")
            or "Content-Type, Authorization, X-Request-ID")
        headers["Access-Control-Max-Age"] = "86400"
    else:
        headers["Access-Control-Expose-Headers"] = "X-Request-ID"


# --- routes outside the pipeline --------------------------------------------------------------


async def list_models(request: web.Request) -> web.Response:
    gateway = request.app[PIPELINE].gateway
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
