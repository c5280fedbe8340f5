"""Running the app: logging, uvloop when installed, graceful shutdown on SIGTERM/SIGINT,
config reload on SIGHUP."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from ferro.app import PIPELINE, create_app, reload
from ferro.config import Config
from ferro.errors import ConfigError
from ferro.logs import setup_logging
from ferro.plugins import FerroPluginManager
from ferro.version import __version__

__all__ = ["serve"]

log = logging.getLogger("ferro.server")


def serve(config: Config, pm: FerroPluginManager, *, config_path: str | None = None) -> None:
    """Serve ``config`` until SIGTERM or SIGINT. SIGHUP reloads ``config_path`` (a file that
    does not load is logged with its located error, and the running config keeps serving)."""
    setup_logging(os.environ.get("LOG_LEVEL", "info"), os.environ.get("LOG_FORMAT", "json"))
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    app = create_app(config, pm)

    async def started(_app: web.Application) -> None:
        log.info("ferrogw %s started on http://%s:%d (strategy %s; providers: %s)",
                 __version__, config.server.host, config.server.port, config.strategy.mode,
                 ", ".join(app[PIPELINE].gateway.providers))
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_file)

    def reload_file() -> None:
        from ferro.cli import load_or_default

        if not config_path:
            log.warning("SIGHUP: no config file to reload (start with --config or "
                        "GATEWAY_CONFIG)")
            return
        try:
            reload(app, load_or_default(config_path))
        except ConfigError as exc:
            log.error("config reload failed; the running config keeps serving: %s",
                      exc.message)

    async def stopping(_app: web.Application) -> None:
        log.info("shutting down gracefully")

    app.on_startup.append(started)
    app.on_shutdown.append(stopping)
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    # handler_cancellation: a client that goes away cancels its request, so no retry or
    # fallback is spent on an answer nobody will read.
    web.run_app(app, host=config.server.host, port=config.server.port, access_log=None,
                print=None, shutdown_timeout=config.server.shutdown_timeout, backlog=4096,
                loop=loop, handler_cancellation=True)
    log.info("server stopped")
