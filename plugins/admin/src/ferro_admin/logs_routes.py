"""``/admin/logs``: the request log (one row per completed exchange) read, summed up and
pruned through the request-log store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web
from ferro import STORES, LogFilter, Storage

from ferro_admin import params
from ferro_admin.errors import NotImplementedYetError
from ferro_admin.views import log_view

__all__ = ["delete_logs", "list_logs", "log_stats"]


def _store(request: web.Request) -> Storage:
    store = request.app[STORES].request_logs
    if store is None:
        raise NotImplementedYetError(
            "the request log is off: configure storage.request_logs (or set "
            "REQUEST_LOG_STORE_BACKEND) and restart the gateway")
    return store


def _filter(query: Mapping[str, str], *labels: str, since: bool = True) -> LogFilter:
    """The filter the query's ``labels`` (stage, model, ...) and ``since`` select."""
    where = LogFilter(**{name: params.query_string(query, name) for name in labels})
    if since:
        where.since = params.query_time(query, "since")
    return where


def _shown(where: LogFilter) -> dict[str, Any]:
    out = attrs.asdict(where)
    for name in ("since", "before"):
        out[name] = params.rfc3339(out[name])
    return {name: value for name, value in out.items() if value}


async def list_logs(request: web.Request) -> web.Response:
    """Rows newest first, filtered and paged."""
    store = _store(request)
    query = request.query
    limit = params.query_int(query, "limit", 50, minimum=1, maximum=200)
    offset = params.query_int(query, "offset", 0, minimum=0)
    where = _filter(query, "stage", "model", "provider", "key_id")
    rows, total = await store.list_logs(where, limit, offset)
    return web.json_response({
        "data": [log_view(row) for row in rows],
        "summary": {"total_entries": total, "returned_entries": len(rows)},
        "filters": {**_shown(where), "limit": limit, "offset": offset},
    })


async def log_stats(request: web.Request) -> web.Response:
    store = _store(request)
    limit = params.query_int(request.query, "limit", 100, minimum=1, maximum=100)
    where = _filter(request.query, "stage", "model", "provider")
    stats = await store.log_stats(where, limit)
    return web.json_response({
        "summary": {"total_entries": stats.total_entries, "error_entries": stats.error_entries,
                    "total_tokens": stats.total_tokens, "total_cost": stats.total_cost},
        "by_stage": stats.by_stage,
        "by_provider": stats.by_provider,
        "by_model": stats.by_model,
        "filters": {**_shown(where), "limit": limit},
    })


async def delete_logs(request: web.Request) -> web.Response:
    """Delete rows older than ``before`` (required), optionally only some."""
    store = _store(request)
    before = params.query_time(request.query, "before", required=True)
    where = _filter(request.query, "stage", "model", "provider", since=False)
    where.before = before
    deleted = await store.delete_logs(where)
    return web.json_response({"deleted": deleted, "filters": _shown(where)})
