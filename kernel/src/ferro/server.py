"""Running the app: logging, uvloop when installed, the listening socket and its connection
limit, config reload on SIGHUP, and the graceful shutdown on SIGTERM or SIGINT.

The shutdown, in ``server.shutdown_timeout`` (T) plus a moment:

1. the listening socket closes (new connections are refused), readiness fails, idle
   connections close, and every response from then on closes its connection;
2. requests and streams in flight finish on their own, each connection closing once its
   last one has, for up to T;
3. at T whatever is still in flight is ended: a stream with an error event
   (``server_shutting_down``) and ``[DONE]``, a request with a 503 of that code;
4. aiohttp's own shutdown gives those last answers :data:`FINAL_WRITE` seconds (twice, as
   it waits, then cancels), the app's cleanup runs, and the process exits 0.

A second SIGTERM or SIGINT during the drain ends the process at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from aiohttp import web

from ferro.app import HEALTH, PIPELINE, create_app, reload
from ferro.config import Config, ServerConfig
from ferro.connections import Connections, connection_limit, raise_open_file_limit
from ferro.edge import ShuttingDownError
from ferro.errors import ConfigError
from ferro.logs import setup_logging
from ferro.plugins import FerroPluginManager
from ferro.version import __version__

__all__ = ["FINAL_WRITE", "GatewayServer", "serve"]

log = logging.getLogger("ferro.server")

#: Seconds the answers that end a drain have to be written, at the end of the shutdown.
FINAL_WRITE = 0.25


def serve(config: Config, pm: FerroPluginManager, *, config_path: str | None = None) -> None:
    """Serve ``config`` until SIGTERM or SIGINT. SIGHUP reloads ``config_path`` (a file that
    does not load is logged with its located error, and the running config keeps serving)."""
    setup_logging(os.environ.get("LOG_LEVEL", "info"), os.environ.get("LOG_FORMAT", "json"))
    limit = connection_limit(config.server.max_connections, raise_open_file_limit())
    app = create_app(config, pm)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_run(app, config, limit, lambda: _reload_file(app, config_path)))
    finally:
        _close(loop)
    log.info("server stopped")


async def _run(app: web.Application, config: Config, limit: int,
               reload_file: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    async with GatewayServer(app, config.server, limit) as server:
        log.info("ferrogw %s started on http://%s:%d (strategy %s; providers: %s)",
                 __version__, config.server.host, server.port, config.strategy.mode,
                 ", ".join(app[PIPELINE].gateway.providers))
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_file)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)


class GatewayServer:
    """The gateway app on its listening socket (through :class:`ferro.connections.Connections`),
    as an async context manager: entered, it serves; left, it shuts down gracefully."""

    connections: Connections

    def __init__(self, app: web.Application, settings: ServerConfig, limit: int) -> None:
        self.app = app
        self.settings = settings
        # handler_cancellation: a client that goes away cancels its request, so no retry or
        # fallback is spent on an answer nobody will read.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     handler_cancellation=True, shutdown_timeout=FINAL_WRITE)
        self._limit = limit
        self._listener: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose for port 0)."""
        assert self._listener is not None
        return self._listener.sockets[0].getsockname()[1]

    async def __aenter__(self) -> GatewayServer:
        await self._runner.setup()
        assert self._runner.server is not None
        self.connections = Connections(self._runner.server, self.settings, self._limit)
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self.connections, self.settings.host, self.settings.port, backlog=4096)
        except BaseException:
            await self._runner.cleanup()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, let what is in flight finish for ``server.shutdown_timeout`` (of
        the config in force), end what is left, and clean up (see the module's doc)."""
        assert self._listener is not None
        timeout = self.app[PIPELINE].gateway.config.server.shutdown_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log.info("shutting down gracefully: requests in flight have %gs to finish", timeout)
        try:
            self._listener.close()
            self.app[HEALTH].draining = True
            await self.connections.drain(deadline)
            if self.connections.open:
                log.warning("ending the requests still in flight after "
                            "server.shutdown_timeout (%gs)", timeout)
                self.app[PIPELINE].stop(ShuttingDownError(
                    f"the gateway shut down before this request finished (within "
                    f"server.shutdown_timeout, {timeout:g}s); retry it"))
        finally:
            await self._runner.cleanup()


def _reload_file(app: web.Application, config_path: str | None) -> None:
    from ferro.cli import load_or_default

    if not config_path:
        log.warning("SIGHUP: no config file to reload (start with --config or GATEWAY_CONFIG)")
        return
    try:
        reload(app, load_or_default(config_path))
    except ConfigError as exc:
        log.error("config reload failed; the running config keeps serving: %s", exc.message)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left running on ``loop`` (background tasks past the cleanup), then
    close it."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
