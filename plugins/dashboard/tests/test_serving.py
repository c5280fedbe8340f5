"""The dashboard's routes in process: the page and its assets, their security and cache
headers, that they answer without an API key, and what the page's files may reach."""

import re
from importlib.resources import files

import pytest
from ferro.testing import stub_config

KEY = "dashboard-test-key-0123456789"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
STATIC = files("ferro_dashboard") / "static"


def shipped(name):
    return STATIC.joinpath(name).read_text("utf-8")


def with_keys():
    config = stub_config()
    config["server"] = {"api_keys": [KEY]}
    return config


def assert_protected(resp):
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name
    policy = resp.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no other origin
    assert directives["frame-ancestors"] == "'none'"


def asset_links(html):
    """The asset URLs the page loads: every ``src`` and ``href`` but in-page anchors and
    inline data (the empty icon)."""
    return [url for url in re.findall(r'(?:src|href)="([^"]+)"', html)
            if not url.startswith(("#", "data:"))]


@pytest.fixture
async def client(ferro_client, stub_plugins):
    return await ferro_client(with_keys(), pm=stub_plugins)


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/"])
async def test_the_page_is_served_without_a_key_when_keys_are_required(client, path):
    refused = await client.get("/v1/models")
    assert refused.status == 401  # the gateway does require a key elsewhere
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert_protected(resp)
    html = await resp.text()
    assert 'id="login-form"' in html
    assert KEY not in html


async def test_every_asset_the_page_links_is_served_at_its_version_and_cached_for_good(client):
    html = await (await client.get("/dashboard")).text()
    links = asset_links(html)
    assert {link.split("?")[0] for link in links} == {
        "/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"}
    kinds = {"js": "text/javascript", "css": "text/css"}
    for link in links:
        path, _, version = link.partition("?v=")
        assert version, f"{link} carries no version"
        resp = await client.get(link)
        assert resp.status == 200, link
        assert resp.content_type == kinds[path.rsplit(".", 1)[1]]
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert resp.headers["ETag"] == f'"{version}"'
        assert_protected(resp)
        assert await resp.text() == shipped(path.rsplit("/", 1)[1])


async def test_an_asset_asked_for_without_its_version_is_revalidated(client):
    resp = await client.get("/dashboard/static/dashboard.js?v=stale")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-cache"


async def test_an_unchanged_file_is_a_304_without_a_body(client):
    for path in ("/dashboard", "/dashboard/static/dashboard.css"):
        first = await client.get(path)
        again = await client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304, path
        assert await again.read() == b""
        assert_protected(again)
        changed = await client.get(path, headers={"If-None-Match": '"something-else"'})
        assert changed.status == 200


@pytest.mark.parametrize("name", ["missing.js", "index.html", "..%2F__init__.py", "dashboard.js.map"])
async def test_a_file_the_dashboard_does_not_ship_is_a_404_in_the_error_schema(client, name):
    resp = await client.get(f"/dashboard/static/{name}")
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert error["code"] == "not_found"
    assert error["type"] == "invalid_request_error"
    assert "dashboard.js" in error["message"]


async def test_a_host_the_gateway_does_not_serve_is_refused_on_the_page_too(client):
    resp = await client.get("/dashboard", headers={"Host": "attacker.example"})
    assert resp.status == 421


def test_the_script_calls_only_admin_routes_through_one_fetch():
    script = shipped("dashboard.js")
    assert script.count("fetch(") == 1
    paths = re.findall(r"""["'`](/[^"'`]*)""", script)
    assert paths, "no route found in the script"
    assert all(path.startswith("/admin/") for path in paths), paths


def test_no_file_reaches_another_origin():
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = shipped(name)
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "@import" not in text, name


def test_data_reaches_the_page_only_as_text():
    script = shipped("dashboard.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "localStorage"):
        assert sink not in script, sink


def test_the_page_has_no_inline_script_style_or_handler_the_policy_would_block():
    html = shipped("index.html")
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="/dashboard/static/dashboard.js">']
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"\sstyle=", html)
