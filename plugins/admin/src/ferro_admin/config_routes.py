"""``/admin/config``: the config in force, its history, and changing it live (see
:mod:`ferro_admin.config_history` for how a change is applied and shared)."""

from __future__ import annotations

from aiohttp import web
from ferro import PIPELINE, InvalidRequestError, request_identity

from ferro_admin import params
from ferro_admin.config_history import CONFIG_SERVICE, ConfigService
from ferro_admin.masking import masked_config
from ferro_admin.views import history_entry

__all__ = ["create_config", "delete_config", "get_config", "get_history", "rollback_config",
           "update_config"]


def _service(request: web.Request) -> ConfigService:
    return request.app[CONFIG_SERVICE]


def _actor(request: web.Request) -> str:
    identity = request_identity(request)
    return identity.key_id if identity is not None else ""


async def get_config(request: web.Request) -> web.Response:
    """The config in force, its secrets masked."""
    return web.json_response(masked_config(request.app[PIPELINE].gateway.config.to_dict()))


async def get_history(request: web.Request) -> web.Response:
    """History entries, newest first, their secrets masked."""
    limit = params.query_int(request.query, "limit", 20, minimum=1, maximum=100)
    offset = params.query_int(request.query, "offset", 0, minimum=0)
    entries, total = await _service(request).history(limit, offset)
    data = []
    for entry in entries:
        view = history_entry(entry)
        view["config"] = masked_config(entry.config)
        data.append(view)
    return web.json_response({"data": data, "summary": {"total_versions": total}})


async def _put(request: web.Request, action: str, status: int) -> web.Response:
    tree = await params.json_object(request)
    entry = await _service(request).change(tree, action, _actor(request))
    return web.json_response({"status": f"{action}d", "version": entry.version},
                             status=status)


async def create_config(request: web.Request) -> web.Response:
    return await _put(request, "create", 201)


async def update_config(request: web.Request) -> web.Response:
    return await _put(request, "update", 200)


async def delete_config(request: web.Request) -> web.Response:
    """Back to the config the gateway started with."""
    entry = await _service(request).change(None, "delete", _actor(request))
    return web.json_response({"status": "deleted", "version": entry.version})


async def rollback_config(request: web.Request) -> web.Response:
    text = request.match_info["version"]
    try:
        version = int(text)
    except ValueError:
        version = 0
    if version <= 0 or not text.strip().isdigit():
        raise InvalidRequestError(f"version must be a positive integer (got {text!r})",
                                  param="version")
    entry, size = await _service(request).rollback(version, _actor(request))
    return web.json_response({"status": "rolled_back", "rolled_back_to": version,
                              "current_history_size": size, "version": entry.version})
