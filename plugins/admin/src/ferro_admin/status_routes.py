"""``/admin/providers``, ``/admin/health`` and ``/admin/dashboard``: what the gateway
serves and how it is doing, from the config in force, the kernel's health report and the
stores."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from ferro import HEALTH, PIPELINE, REQUEST_LOG, STORES, LogFilter

from ferro_admin.config_history import CONFIG_SERVICE

__all__ = ["dashboard", "health", "providers"]

#: The kernel's overall status -> the management API's.
_STATUS = {"ok": "healthy", "degraded": "degraded", "no_providers": "no_providers"}
_PROVIDER_FIELDS = ("name", "status", "models", "breaker", "message")


async def providers(request: web.Request) -> web.Response:
    """Each provider of the config in force: its name, type and the models it lists."""
    gateway = request.app[PIPELINE].gateway
    names = list(gateway.providers)
    lists = await asyncio.gather(*(gateway.providers[n].list_models() for n in names),
                                 return_exceptions=True)
    out = []
    for name, models in zip(names, lists, strict=True):
        settings = gateway.config.providers.get(name)
        out.append({"name": name, "type": (settings.type if settings else "") or name,
                    "models": [] if isinstance(models, BaseException)
                    else [m.to_openai() for m in models]})
    return web.json_response(out)


async def _report(request: web.Request) -> dict[str, Any]:
    """The kernel's ``/health`` report (``?deep=1`` passes through), in the API's terms."""
    deep = request.query.get("deep", "").lower() in ("1", "true", "yes")
    status, providers = await request.app[HEALTH].summary(deep)
    return {"status": _STATUS.get(status, status),
            "providers": [{k: p[k] for k in _PROVIDER_FIELDS if k in p} for p in providers]}


async def health(request: web.Request) -> web.Response:
    return web.json_response(await _report(request))


async def dashboard(request: web.Request) -> web.Response:
    """One call's worth of counts for a dashboard's front page."""
    app = request.app
    report = await _report(request)
    stores = app[STORES]
    keys: dict[str, Any] = {"total": 0, "active": 0, "expired": 0, "revoked": 0,
                            "total_usage": 0}
    if stores.keys is not None:
        now = datetime.now(UTC)
        for record in await stores.keys.list_keys():
            keys["total"] += 1
            keys[record.status(now)] += 1
            keys["total_usage"] += record.usage_count
    logs: dict[str, Any] = {"enabled": stores.request_logs is not None, "total": 0,
                            "dropped": 0}
    if stores.request_logs is not None:
        _, logs["total"] = await stores.request_logs.list_logs(LogFilter(), 1, 0)
        writer = app.get(REQUEST_LOG)
        logs["dropped"] = writer.dropped if writer is not None else 0
    gateway = app[PIPELINE].gateway
    return web.json_response({
        "providers": {"total": len(report["providers"]),
                      "available": sum(p.get("status") == "available" and p.get("breaker") != "open"
                                       for p in report["providers"])},
        "keys": keys,
        "request_logs": logs,
        "config": {"version": app[CONFIG_SERVICE].version,
                   "strategy": gateway.config.strategy.mode},
    })
