"""The management API's route table: each route with the scope it needs."""

from __future__ import annotations

from aiohttp import web

from ferro_admin import config_routes, keys_routes, logs_routes, status_routes
from ferro_admin.auth import READ, WRITE, Handler, needs

__all__ = ["ROUTES", "add_routes"]

#: (method, path, scope, handler). ``/admin/keys/usage`` comes before ``/admin/keys/{id}``.
ROUTES: list[tuple[str, str, str, Handler]] = [
    ("GET", "/admin/keys", READ, keys_routes.list_keys),
    ("GET", "/admin/keys/usage", READ, keys_routes.key_usage),
    ("GET", "/admin/keys/{key_id}", READ, keys_routes.get_key),
    ("POST", "/admin/keys", WRITE, keys_routes.create_key),
    ("PUT", "/admin/keys/{key_id}", WRITE, keys_routes.update_key),
    ("DELETE", "/admin/keys/{key_id}", WRITE, keys_routes.delete_key),
    ("POST", "/admin/keys/{key_id}/revoke", WRITE, keys_routes.revoke_key),
    ("POST", "/admin/keys/{key_id}/rotate", WRITE, keys_routes.rotate_key),
    ("GET", "/admin/providers", READ, status_routes.providers),
    ("GET", "/admin/health", READ, status_routes.health),
    ("GET", "/admin/dashboard", READ, status_routes.dashboard),
    ("GET", "/admin/logs", READ, logs_routes.list_logs),
    ("GET", "/admin/logs/stats", READ, logs_routes.log_stats),
    ("DELETE", "/admin/logs", WRITE, logs_routes.delete_logs),
    ("GET", "/admin/config", READ, config_routes.get_config),
    ("GET", "/admin/config/history", READ, config_routes.get_history),
    ("POST", "/admin/config", WRITE, config_routes.create_config),
    ("PUT", "/admin/config", WRITE, config_routes.update_config),
    ("DELETE", "/admin/config", WRITE, config_routes.delete_config),
    ("POST", "/admin/config/rollback/{version}", WRITE, config_routes.rollback_config),
]


def add_routes(app: web.Application) -> None:
    for method, path, scope, handler in ROUTES:
        app.router.add_route(method, path, needs(scope, handler))
