"""The dashboard's files, read once from the package: the page and the assets it loads,
each with its content type and an ETag (a hash of its bytes).

The page links each asset with ``?v=<its ETag>``, so a browser may keep an asset for a year:
after an upgrade the page names new URLs and the old copies are never used again."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import attrs
from aiohttp import web

__all__ = ["ASSETS", "PAGE", "Asset", "Assets"]

#: The page's file name in the package's ``static`` folder.
PAGE = "index.html"

#: Each asset the page loads, by file name, and its content type.
ASSET_TYPES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

#: Where the page refers to an asset (it is written with these URLs).
STATIC_PREFIX = "/dashboard/static/"


@attrs.frozen
class Asset:
    """One file as served."""

    body: bytes
    content_type: str
    etag: str = attrs.field(init=False)

    @etag.default
    def _hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:20]


@attrs.frozen
class Assets:
    """The page and its assets by file name."""

    page: Asset
    files: dict[str, Asset]

    @classmethod
    def load(cls) -> Assets:
        """Read the shipped files and point the page's asset links at their versions."""
        folder = files("ferro_dashboard") / "static"
        found = {name: Asset(folder.joinpath(name).read_bytes(), kind)
                 for name, kind in ASSET_TYPES.items()}
        html = folder.joinpath(PAGE).read_text("utf-8")
        for name, asset in found.items():
            html = html.replace(f'"{STATIC_PREFIX}{name}"', f'"{STATIC_PREFIX}{name}?v={asset.etag}"')
        return cls(Asset(html.encode("utf-8"), "text/html; charset=utf-8"), found)


ASSETS = web.AppKey("ferro_dashboard_assets", Assets)
