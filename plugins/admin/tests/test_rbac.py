"""Who may call what: every management route against every kind of caller."""

from datetime import UTC, datetime, timedelta

import pytest

#: (method, path, needs admin, status for a caller allowed). ``{id}`` is a stored key's id.
ROUTES = [
    ("GET", "/admin/keys", False, 200),
    ("GET", "/admin/keys/usage", False, 200),
    ("GET", "/admin/keys/{id}", False, 200),
    ("POST", "/admin/keys", True, 201),
    ("PUT", "/admin/keys/{id}", True, 200),
    ("DELETE", "/admin/keys/{id}", True, 204),
    ("POST", "/admin/keys/{id}/revoke", True, 200),
    ("POST", "/admin/keys/{id}/rotate", True, 200),
    ("GET", "/admin/providers", False, 200),
    ("GET", "/admin/health", False, 200),
    ("GET", "/admin/dashboard", False, 200),
    ("GET", "/admin/logs", False, 200),
    ("GET", "/admin/logs/stats", False, 200),
    ("DELETE", "/admin/logs?before=2030-01-01T00:00:00Z", True, 200),
    ("GET", "/admin/config", False, 200),
    ("GET", "/admin/config/history", False, 200),
    ("POST", "/admin/config", True, 201),
    ("PUT", "/admin/config", True, 200),
    ("DELETE", "/admin/config", True, 200),
    ("POST", "/admin/config/rollback/1", True, 200),
]

UNAUTHENTICATED = ("no key", "unknown key", "revoked key", "expired key")


def _config(kit):
    return kit.config(server={"api_keys": [kit.CONFIG_KEY]})


def _body(kit, method, path):
    if path == "/admin/keys" and method == "POST":
        return {"name": "made by the matrix"}
    if path == "/admin/keys/{id}":
        return {"name": "renamed"} if method == "PUT" else None
    if path == "/admin/config" and method in ("POST", "PUT"):
        return _config(kit)
    return None


@pytest.mark.parametrize(("method", "path", "writes", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_every_caller_gets_the_status_its_scopes_allow(kit, method, path, writes,
                                                             allowed):
    gw = await kit.start(_config(kit))
    target = await gw.create_key(name="target")
    inference = (await gw.create_key(name="inference", scopes=["inference"]))["key"]
    revoked = await gw.create_key(name="revoked", scopes=["admin"])
    assert (await gw.call("POST", f"/admin/keys/{revoked['id']}/revoke"))[0] == 200
    expired = await gw.create_key(name="expired", scopes=["admin"], expires_in=60)
    record = await gw.ring.storage.get_key(expired["id"])
    record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await gw.ring.update(record)
    assert (await gw.call("PUT", "/admin/config", json=_config(kit)))[0] == 200  # version 1

    callers = {"no key": None, "unknown key": "fgw_" + "x" * 43, "revoked key": revoked["key"],
               "expired key": expired["key"], "inference key": inference,
               "config api_keys key": kit.CONFIG_KEY, "read_only key": kit.READER,
               "admin key": kit.ADMIN}  # admin last: its write may delete the target
    url = path.replace("{id}", target["id"])
    seen = {}
    for caller, secret in callers.items():
        status, body = await gw.call(method, url, key=secret, json=_body(kit, method, path))
        seen[caller] = status
        if caller in UNAUTHENTICATED:
            assert body["error"]["type"] == "authentication_error", (caller, body)
            assert body["error"]["code"] == "invalid_api_key", (caller, body)
        elif status == 403:
            assert body["error"]["type"] == "permission_error", (caller, body)
            assert body["error"]["code"] == "insufficient_scope", (caller, body)

    expected = {caller: 401 for caller in UNAUTHENTICATED}
    expected.update({"inference key": 403, "config api_keys key": 403,
                     "read_only key": 403 if writes else allowed, "admin key": allowed})
    assert seen == expected


async def test_admin_needs_a_stored_key_on_a_gateway_with_no_keys(kit):
    gw = await kit.start(env={"ADMIN_BOOTSTRAP_ENABLED": "false"})
    assert await gw.ring.storage.count_keys() == 0
    status, body = await gw.call("GET", "/admin/keys", key=None)
    assert status == 401
    assert "ADMIN_BOOTSTRAP_KEY" in body["error"]["message"]
    status, body = await gw.call("GET", "/admin/keys", key="fgw_made-up-key-0000000000000")
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    # the inference routes stay open while no key exists
    assert (await gw.chat(None))[0] == 200


async def test_without_a_key_store_admin_says_what_to_configure(ferro_client, kit):
    client = await ferro_client(kit.config(), pm=kit.pm)  # no storage section: no stores
    async with client.get("/admin/keys", headers={"Authorization": "Bearer whatever"}) as resp:
        body = await resp.json()
    assert resp.status == 501
    assert body["error"]["code"] == "not_implemented"
    assert "storage.keys" in body["error"]["message"]
