"""Ferro's management API (``/admin``): API keys, the live config with its history and
rollback, the request log, and the gateway's status; and the ``ferrogw-cli admin``
commands that call it. See README.md for every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from ferro import Config, hookimpl

from ferro_admin.config_history import CONFIG_SERVICE, ConfigService, config_service
from ferro_admin.routes import ROUTES, add_routes

__all__ = ["CONFIG_SERVICE", "ROUTES", "ConfigService"]


@hookimpl
def configure_app(app: web.Application, config: Config) -> None:
    add_routes(app)
    app[CONFIG_SERVICE] = ConfigService(app, config)
    app.cleanup_ctx.append(config_service)  # after the kernel's: the stores are open


@hookimpl
def config_file_reloaded(app: web.Application, config: Config) -> bool | None:
    service = app.get(CONFIG_SERVICE)
    return True if service is not None and service.file_reloaded(config) else None


@hookimpl
def register_commands(cli: Any) -> None:
    from ferro_admin.cli import admin

    cli.add_command(admin)
