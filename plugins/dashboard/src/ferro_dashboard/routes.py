"""The dashboard's routes: the page and its assets, public, with headers that keep the
page from being framed, sniffed or made to load anything but its own files.

The Content-Security-Policy allows scripts, styles and requests to this origin only, no
inline script and no form submission (the key form is handled by the script, so a key is
never put in a URL even if the script fails to load)."""

from __future__ import annotations

from aiohttp import web
from ferro import InvalidRequestError, public_route

from ferro_dashboard.assets import ASSETS, Asset

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "serve_asset", "serve_page"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

#: Checked on every use (a cheap 304 while unchanged), so an upgrade shows at once.
REVALIDATE = "no-cache"
#: An asset asked for at its current version never changes under that URL.
VERSIONED_CACHE = "public, max-age=31536000, immutable"


class AssetNotFoundError(InvalidRequestError):
    """A file the dashboard does not ship (404)."""

    status = 404
    code = "not_found"


@public_route
async def serve_page(request: web.Request) -> web.Response:
    """``GET /dashboard``: the page."""
    return _reply(request, request.app[ASSETS].page, REVALIDATE)


@public_route
async def serve_asset(request: web.Request) -> web.Response:
    """``GET /dashboard/static/{name}``: one of the page's assets; cached for good when
    asked for at its current version (``?v=``), else revalidated on each use."""
    assets = request.app[ASSETS]
    name = request.match_info["name"]
    asset = assets.files.get(name)
    if asset is None:
        raise AssetNotFoundError(
            f"the dashboard has no file {name[:100]!r} (it serves {', '.join(sorted(assets.files))}); "
            "open /dashboard to load the page")
    versioned = request.query.get("v") == asset.etag
    return _reply(request, asset, VERSIONED_CACHE if versioned else REVALIDATE)


def _reply(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    """``asset`` with the security and cache headers; 304 when the browser's copy (its
    ``If-None-Match``) is current."""
    etag = f'"{asset.etag}"'
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": etag}
    listed = _listed_etags(request.headers.get("If-None-Match", ""))
    if etag in listed or "*" in listed:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


def _listed_etags(value: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (weak ones compared as strong)."""
    return {tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()}
