"""The Ferro AI Gateway web dashboard: ``GET /dashboard``, a single page (HTML, one script,
one stylesheet, shipped in this package) that asks for an API key and drives the ``/admin``
API from the browser. The page and its assets are public: they hold no data, and the
browser sends the key only to ``/admin``."""

from __future__ import annotations

from aiohttp import web
from ferro import hookimpl

from ferro_dashboard.assets import ASSETS, Assets
from ferro_dashboard.routes import serve_asset, serve_page

__all__ = ["ASSETS", "Assets"]


@hookimpl
def configure_app(app: web.Application) -> None:
    app[ASSETS] = Assets.load()
    app.router.add_get("/dashboard", serve_page)
    app.router.add_get("/dashboard/", serve_page)
    app.router.add_get("/dashboard/static/{name}", serve_asset)
