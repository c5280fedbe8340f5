"""/admin/providers, /admin/health and /admin/dashboard."""

from datetime import UTC, datetime, timedelta

from ferro.testing import stub_config


async def test_providers_list_their_type_and_models(kit):
    config = kit.config()
    config["providers"] = {"main": {"type": "stub", "models": ["m-1", "m-2"]}}
    config["targets"] = [{"virtual_key": "main"}]
    gw = await kit.start(config)
    status, body = await gw.call("GET", "/admin/providers")
    assert status == 200
    assert body == [{"name": "main", "type": "stub", "models": [
        {"id": "m-1", "object": "model", "created": 0, "owned_by": "main"},
        {"id": "m-2", "object": "model", "created": 0, "owned_by": "main"}]}]


async def test_health_is_healthy_then_degraded_once_a_breaker_opens(kit):
    config = kit.config()
    config.update(stub_config("good", "bad", strategy="fallback"))
    config["providers"]["bad"]["fail_status"] = 503
    config["targets"] = [{"virtual_key": "bad", "circuit_breaker": {"failure_threshold": 1}},
                         {"virtual_key": "good"}]
    gw = await kit.start(config)
    status, body = await gw.call("GET", "/admin/health")
    assert (status, body["status"]) == (200, "healthy")
    assert {p["name"]: p["breaker"] for p in body["providers"]} == {"good": "closed",
                                                                   "bad": "closed"}
    assert set(body["providers"][0]) <= {"name", "status", "models", "breaker", "message"}
    assert (await gw.chat(gw.ADMIN))[0] == 200  # bad fails, its breaker opens, good answers
    _, body = await gw.call("GET", "/admin/health")
    assert body["status"] == "degraded"
    assert {p["name"]: p["breaker"] for p in body["providers"]}["bad"] == "open"
    _, dashboard = await gw.call("GET", "/admin/dashboard")
    assert dashboard["providers"] == {"total": 2, "available": 1}


async def test_the_dashboard_counts_keys_logs_and_the_config(kit):
    gw = await kit.start()
    used = await gw.create_key(name="used")
    revoked = await gw.create_key(name="revoked")
    await gw.call("POST", f"/admin/keys/{revoked['id']}/revoke")
    expired = await gw.create_key(name="expired", expires_in=60)
    record = await gw.ring.storage.get_key(expired["id"])
    record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await gw.ring.update(record)
    for _ in range(2):
        assert (await gw.chat(used["key"]))[0] == 200
    await gw.ring.flush()
    await gw.call("PUT", "/admin/config", json=kit.config(strategy={"mode": "fallback"}))
    status, body = await gw.call("GET", "/admin/dashboard")
    assert status == 200
    assert body["keys"] == {"total": 5, "active": 3, "expired": 1, "revoked": 1,
                            "total_usage": 2}
    assert body["request_logs"]["enabled"] is True and body["request_logs"]["dropped"] == 0
    assert body["config"] == {"version": 1, "strategy": "fallback"}
    assert body["providers"] == {"total": 1, "available": 1}


async def test_the_dashboard_without_a_log_store(kit):
    gw = await kit.start(kit.config(storage={"keys": kit.storage["keys"]}))
    _, body = await gw.call("GET", "/admin/dashboard")
    assert body["request_logs"] == {"enabled": False, "total": 0, "dropped": 0}
    assert body["config"]["version"] is None
