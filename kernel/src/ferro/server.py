"""Running the app: logging (the config's ``logging``, the access log), uvloop when
installed, the listening socket (bound once, before anything else; with ``workers`` above 1
shared by that many processes, see :mod:`ferro.workers`) and its connection limit, config
reload on SIGHUP, the garbage collector's settings, and the graceful shutdown on SIGTERM or
SIGINT.

The garbage collector: a serving process collects its youngest generation every
:data:`GC_YOUNG_THRESHOLD` allocations (Python's default is 700), and once it has started,
what start-up made (modules, the app, the config) is frozen out of every collection
(``gc.freeze``). With 32 requests in flight their objects alone outnumber 700, so the
default collected every few dozen requests, each time walking the live requests' objects,
and every few seconds walked the whole heap: about 11 us a request in all, and pauses of
18 ms. A cycle of garbage still goes at the next collection, unless start-up made it: the
first config's objects, once a reload has replaced it, stay (once, however many reloads).

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
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from ferro.app import HEALTH, PIPELINE, create_app, reload_file
from ferro.config import Config, ServerConfig
from ferro.connections import Connections, connection_limit, raise_open_file_limit
from ferro.edge import ShuttingDownError
from ferro.errors import ConfigError
from ferro.logs import configure_logging, log_request
from ferro.plugins import FerroPluginManager
from ferro.version import __version__
from ferro.workers import Supervisor

__all__ = ["BACKLOG", "FINAL_WRITE", "GC_YOUNG_THRESHOLD", "GatewayServer", "listen", "serve", "serve_on"]

log = logging.getLogger("ferro.server")

#: Seconds the answers that end a drain have to be written, at the end of the shutdown.
FINAL_WRITE = 0.25
#: Connections the OS may queue for the listening socket before they are accepted.
BACKLOG = 4096
#: Allocations (less deallocations) between two collections of the youngest generation.
GC_YOUNG_THRESHOLD = 10_000


def serve(config: Config, pm: FerroPluginManager, *, config_path: str | None = None,
          workers: int = 1) -> int:
    """Serve ``config`` until SIGTERM or SIGINT; the exit code (0: every process shut down
    cleanly). SIGHUP reloads ``config_path`` (a file that does not load is logged with its
    located error, and the running config keeps serving). With ``workers`` above 1, that
    many processes serve the one listening socket (see :mod:`ferro.workers`). Raises
    ConfigError when the gateway cannot start."""
    configure_logging(config.logging, os.environ, pid=workers > 1)
    limit = connection_limit(config.server.max_connections, raise_open_file_limit())
    with listen(config.server.host, config.server.port) as sock:
        if workers == 1:
            serve_on(sock, config, pm, limit, config_path)
            return 0
        log.info("ferrogw %s listening on http://%s:%d with %d workers", __version__,
                 config.server.host, sock.getsockname()[1], workers)
        return Supervisor(sock, workers, lambda reload_first: serve_on(
            sock, config, pm, limit, config_path, reload_first=reload_first)).run()


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (its first address; port 0: one the OS
    picks), with ``SO_REUSEADDR``. Raises ConfigError when it cannot be bound."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        return socket.create_server(address, family=family, backlog=BACKLOG)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}: choose "
                          "another server.host or server.port (--host, --port)") from None


def serve_on(sock: socket.socket, config: Config, pm: FerroPluginManager, limit: int,
             config_path: str | None, *, reload_first: bool = False) -> None:
    """Serve ``config`` on the listening ``sock`` in this process until SIGTERM or SIGINT,
    with at most ``limit`` connections open; ``reload_first``: apply ``config_path`` as
    SIGHUP does, once started (a worker started after the others were told to reload)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    app = create_app(config, pm)
    if config.logging.requests:
        app[PIPELINE].events.add(log_request)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_run(app, config, limit, sock,
                                     lambda: _reload_file(app, config_path), reload_first))
    finally:
        _close(loop)
    log.info("server stopped")


async def _run(app: web.Application, config: Config, limit: int, sock: socket.socket,
               on_sighup: Callable[[], None], reload_first: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        async with GatewayServer(app, config.server, limit, sock=sock) as server:
            log.info("ferrogw %s started on http://%s:%d (strategy %s; providers: %s)",
                     __version__, config.server.host, server.port, config.strategy.mode,
                     ", ".join(app[PIPELINE].gateway.providers))
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            gc.freeze()  # what start-up made stays: no collection needs to walk it again
            if reload_first:
                on_sighup()
            await stop.wait()
        # the drain is over: until then a repeated SIGTERM only set ``stop`` again (systemd,
        # or a signal to the process group, reaches workers beside their supervisor's)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for sig in (signal.SIGTERM, signal.SIGINT):  # on its way out: a late one must not
            signal.signal(sig, signal.SIG_IGN)       # cut the last writes short


class GatewayServer:
    """The gateway app on its listening socket (through :class:`ferro.connections.Connections`),
    as an async context manager: entered, it serves; left, it shuts down gracefully. The
    socket is ``sock`` when given (bound and listening already, perhaps shared with other
    processes), else one it opens on ``settings.host`` and ``settings.port``."""

    connections: Connections

    def __init__(self, app: web.Application, settings: ServerConfig, limit: int, *,
                 sock: socket.socket | None = None) -> None:
        self.app = app
        self.settings = settings
        # handler_cancellation: a client that goes away cancels its request, so no retry or
        # fallback is spent on an answer nobody will read.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     handler_cancellation=True, shutdown_timeout=FINAL_WRITE)
        self._limit = limit
        self._sock = sock
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
        loop = asyncio.get_running_loop()
        try:
            if self._sock is not None:
                self._listener = await loop.create_server(self.connections, sock=self._sock,
                                                          backlog=BACKLOG)
            else:
                self._listener = await loop.create_server(
                    self.connections, self.settings.host, self.settings.port, backlog=BACKLOG)
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
            if self._sock is not None:  # uvloop serves a copy of it: close the original too
                self._sock.close()
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
        reload_file(app, load_or_default(config_path))
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
