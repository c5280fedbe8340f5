"""API keys through /admin/keys: the lifecycle, what a key may do on /v1, and the 400s."""

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

SECRET = re.compile(r"fgw_[A-Za-z0-9_-]{43}")
CORE = pytest.mark.parametrize("storage", ["sqlite", "postgres"], indirect=True)


@CORE
async def test_a_new_key_shows_its_secret_once_then_only_masked(kit):
    gw = await kit.start()
    made = await gw.create_key(name="ci", models=["gpt-x"], budget=5)
    assert SECRET.fullmatch(made["key"])
    assert made["scopes"] == ["inference"]
    assert (made["status"], made["active"], made["models"], made["budget"], made["spent"],
            made["usage_count"]) == ("active", True, ["gpt-x"], 5.0, 0.0, 0)
    assert made["created_at"].endswith("Z") and made["expires_at"] is None
    masked = made["key"][:8] + "..." + made["key"][-4:]
    status, listed = await gw.call("GET", "/admin/keys")
    assert status == 200
    assert [k["name"] for k in listed] == ["bootstrap (ADMIN_BOOTSTRAP_KEY)",
                                           "bootstrap (ADMIN_BOOTSTRAP_READ_ONLY_KEY)", "ci"]
    assert listed[-1]["key"] == masked
    status, one = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert (status, one["key"]) == (200, masked)
    status, changed = await gw.call("PUT", f"/admin/keys/{made['id']}", json={"name": "ci-2"})
    assert (status, changed["name"], changed["key"]) == (200, "ci-2", masked)
    assert made["key"] not in str(listed) + str(one) + str(changed)


@CORE
async def test_rotation_refuses_the_old_secret_at_once_and_serves_the_new(kit):
    gw = await kit.start()
    made = await gw.create_key(name="ops", scopes=["admin", "inference"])
    old = made["key"]
    assert (await gw.chat(old))[0] == 200  # cached by the key ring now
    status, rotated = await gw.call("POST", f"/admin/keys/{made['id']}/rotate")
    assert status == 200 and rotated["id"] == made["id"]
    new = rotated["key"]
    assert SECRET.fullmatch(new) and new != old and rotated["rotated_at"] is not None
    assert (await gw.chat(old))[0] == 401
    assert (await gw.call("GET", "/admin/keys", key=old))[0] == 401
    assert (await gw.chat(new))[0] == 200
    assert (await gw.call("GET", "/admin/keys", key=new))[0] == 200


@CORE
async def test_a_revoked_key_is_refused_from_the_next_request(kit):
    gw = await kit.start()
    made = await gw.create_key(name="leaked")
    assert (await gw.chat(made["key"]))[0] == 200
    assert await gw.call("POST", f"/admin/keys/{made['id']}/revoke") == (
        200, {"status": "revoked"})
    status, body = await gw.chat(made["key"])
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    _, shown = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert (shown["status"], shown["active"]) == ("revoked", False)
    assert shown["revoked_at"] is not None


async def test_an_expired_key_is_refused_until_its_expiry_is_cleared(kit):
    gw = await kit.start()
    made = await gw.create_key(name="temp", expires_in="720h")
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(hours=719) < expires - datetime.now(UTC) <= timedelta(hours=720)
    record = await gw.ring.storage.get_key(made["id"])
    record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await gw.ring.update(record)
    assert (await gw.chat(made["key"]))[0] == 401
    _, shown = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert (shown["status"], shown["active"]) == ("expired", False)
    status, cleared = await gw.call("PUT", f"/admin/keys/{made['id']}",
                                    json={"clear_expiration": True})
    assert (status, cleared["expires_at"], cleared["status"]) == (200, None, "active")
    assert (await gw.chat(made["key"]))[0] == 200


async def test_expiry_given_as_a_time_or_in_seconds(kit):
    gw = await kit.start()
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    made = await gw.create_key(expires_at=when.isoformat().replace("+00:00", "Z"))
    assert datetime.fromisoformat(made["expires_at"]) == when
    made = await gw.create_key(expires_in=90)
    left = datetime.fromisoformat(made["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=80) < left <= timedelta(seconds=90)


async def test_a_key_may_ask_only_for_its_models(kit):
    gw = await kit.start()
    made = await gw.create_key(models=["allowed-model"])
    assert (await gw.chat(made["key"], "allowed-model"))[0] == 200
    status, body = await gw.chat(made["key"], "other-model")
    assert (status, body["error"]["code"], body["error"]["param"]) == (
        403, "model_not_allowed", "model")


@CORE
async def test_a_spent_budget_is_a_429_until_the_budget_is_raised(kit):
    gw = await kit.start()
    made = await gw.create_key(budget=1.0)  # two calls cost $1.40
    for _ in range(2):
        assert (await gw.chat(made["key"], kit.PRICED_MODEL))[0] == 200
    status, body = await gw.chat(made["key"], kit.PRICED_MODEL)
    assert (status, body["error"]["code"]) == (429, "budget_exceeded")
    await gw.ring.flush()
    _, shown = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert shown["spent"] == pytest.approx(2 * kit.COST_PER_CALL)
    status, raised = await gw.call("PUT", f"/admin/keys/{made['id']}", json={"budget": 10})
    assert (status, raised["budget"]) == (200, 10.0)
    assert (await gw.chat(made["key"], kit.PRICED_MODEL))[0] == 200
    status, cleared = await gw.call("PUT", f"/admin/keys/{made['id']}",
                                    json={"clear_budget": True})
    assert (status, cleared["budget"]) == (200, None)


async def test_a_spent_budget_stays_spent_after_the_usage_is_written(kit):
    gw = await kit.start()
    made = await gw.create_key(budget=1.0)
    for _ in range(2):
        assert (await gw.chat(made["key"], kit.PRICED_MODEL))[0] == 200
    await gw.ring.flush()
    status, body = await gw.chat(made["key"], kit.PRICED_MODEL)
    assert (status, body["error"]["code"]) == (429, "budget_exceeded")


async def test_a_request_the_key_is_refused_counts_as_a_use(kit):
    gw = await kit.start()
    made = await gw.create_key(models=["gpt-x"])
    status, body = await gw.chat(made["key"], "not-allowed")
    assert (status, body["error"]["code"]) == (403, "model_not_allowed")
    await gw.ring.flush()
    _, key = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert key["usage_count"] == 1 and key["last_used_at"] and key["spent"] == 0.0


@CORE
async def test_usage_is_counted_per_key_and_listed_by_use(kit):
    gw = await kit.start()
    busy, idle = await gw.create_key(name="busy"), await gw.create_key(name="idle")
    for _ in range(3):
        assert (await gw.chat(busy["key"]))[0] == 200
    await gw.ring.flush()
    status, usage = await gw.call("GET", "/admin/keys/usage", params={"limit": 2})
    assert status == 200
    assert usage["data"][0]["name"] == "busy"
    assert usage["data"][0]["usage_count"] == 3 and usage["data"][0]["last_used_at"]
    assert usage["summary"] == {"total_keys": 4, "active_keys": 4, "total_usage": 3,
                                "returned_keys": 2}
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _, used = await gw.call("GET", "/admin/keys/usage",
                            params={"since": since, "sort": "last_used"})
    assert [k["name"] for k in used["data"]] == ["busy"]
    assert used["filters"]["sort"] == "last_used"
    await gw.call("POST", f"/admin/keys/{idle['id']}/revoke")
    _, inactive = await gw.call("GET", "/admin/keys/usage", params={"active": "false"})
    assert [k["name"] for k in inactive["data"]] == ["idle"]
    _, page = await gw.call("GET", "/admin/keys/usage", params={"offset": 3})
    assert page["summary"]["returned_keys"] == 1


async def test_inference_needs_a_key_once_one_is_stored_unless_opened(kit):
    closed = await kit.start()
    status, body = await closed.chat(None)
    assert (status, body["error"]["type"]) == (401, "authentication_error")
    assert (await closed.chat("fgw_not-a-key-at-all-000000000"))[0] == 401
    opened = await kit.start(kit.config(server={"open_inference": True}))
    assert (await opened.chat(None))[0] == 200
    assert (await opened.chat("fgw_not-a-key-at-all-000000000"))[0] == 401  # still checked
    assert (await opened.call("GET", "/admin/keys", key=None))[0] == 401


async def test_a_key_without_inference_scope_cannot_call_v1(kit):
    gw = await kit.start()
    status, body = await gw.chat(kit.READER)
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")


@pytest.mark.parametrize(("body", "param", "says"), [
    ({}, "name", "required"),
    ({"name": ""}, "name", "non-empty"),
    ({"name": 3}, "name", "string"),
    ({"name": "k", "scopes": ["root"]}, "scopes", "admin, read_only, inference"),
    ({"name": "k", "scopes": []}, "scopes", "admin, read_only, inference"),
    ({"name": "k", "scopes": "admin"}, "scopes", "array"),
    ({"name": "k", "budget": -1}, "budget", "zero or more"),
    ({"name": "k", "budget": "5"}, "budget", "number"),
    ({"name": "k", "models": [1]}, "models", "array of non-empty strings"),
    ({"name": "k", "expires_at": "tomorrow"}, "expires_at", "RFC 3339"),
    ({"name": "k", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "past"),
    ({"name": "k", "expires_in": "soon"}, "expires_in", "720h"),
    ({"name": "k", "expires_in": -5}, "expires_in", "positive"),
    ({"name": "k", "expires_in": 60, "expires_at": "2099-01-01T00:00:00Z"}, "expires_in",
     "not both"),
    ({"name": "k", "scope": ["admin"]}, "scope", "known: name, scopes"),
])
async def test_a_bad_key_body_is_a_400_naming_the_field(kit, body, param, says):
    gw = await kit.start()
    status, answer = await gw.call("POST", "/admin/keys", json=body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    assert says in answer["error"]["message"]
    _, listed = await gw.call("GET", "/admin/keys")
    assert len(listed) == 2  # nothing was made


@pytest.mark.parametrize(("body", "param"), [
    ({"budget": 1, "clear_budget": True}, "clear_budget"),
    ({"expires_at": "2099-01-01T00:00:00Z", "clear_expiration": True}, "clear_expiration"),
    ({"clear_budget": "yes"}, "clear_budget"),
    ({"scopes": ["everything"]}, "scopes"),
])
async def test_a_bad_update_is_a_400_and_changes_nothing(kit, body, param):
    gw = await kit.start()
    made = await gw.create_key(budget=3)
    status, answer = await gw.call("PUT", f"/admin/keys/{made['id']}", json=body)
    assert (status, answer["error"]["param"]) == (400, param)
    _, shown = await gw.call("GET", f"/admin/keys/{made['id']}")
    assert (shown["budget"], shown["scopes"]) == (3.0, ["inference"])


@pytest.mark.parametrize("body", ["not json", "[1, 2]", ""])
async def test_a_body_that_is_not_a_json_object_is_a_400(kit, body):
    gw = await kit.start()
    status, answer = await gw.call("POST", "/admin/keys", data=body)
    assert (status, answer["error"]["param"]) == (400, "body")


@pytest.mark.parametrize(("method", "suffix", "json"), [
    ("GET", "", None), ("PUT", "", {"name": "x"}), ("DELETE", "", None),
    ("POST", "/revoke", None), ("POST", "/rotate", None)])
async def test_an_unknown_key_id_is_a_404(kit, method, suffix, json):
    gw = await kit.start()
    status, body = await gw.call(method, f"/admin/keys/no-such-id{suffix}", json=json)
    assert (status, body["error"]["code"]) == (404, "resource_not_found")


async def test_a_deleted_key_is_gone_and_refused(kit):
    gw = await kit.start()
    made = await gw.create_key()
    assert (await gw.call("DELETE", f"/admin/keys/{made['id']}"))[0] == 204
    assert (await gw.call("GET", f"/admin/keys/{made['id']}"))[0] == 404
    assert (await gw.chat(made["key"]))[0] == 401
    assert (await gw.call("DELETE", f"/admin/keys/{made['id']}"))[0] == 404


@pytest.mark.parametrize(("query", "param"), [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"sort": "name"}, "sort"), ({"active": "maybe"}, "active"),
    ({"since": "yesterday"}, "since"), ({"since": "2025-01-01T00:00:00"}, "since")])
async def test_bad_usage_queries_are_400s_naming_the_param(kit, query, param):
    gw = await kit.start()
    status, body = await gw.call("GET", "/admin/keys/usage", params=query)
    assert (status, body["error"]["param"]) == (400, param)


@CORE
async def test_concurrent_creations_make_distinct_keys(kit):
    gw = await kit.start()
    made = await asyncio.gather(*(gw.create_key(name=f"k{i}") for i in range(20)))
    assert len({m["id"] for m in made}) == len({m["key"] for m in made}) == 20
    _, listed = await gw.call("GET", "/admin/keys")
    assert {k["name"] for k in listed} >= {f"k{i}" for i in range(20)}
    assert len(listed) == 22
    results = await asyncio.gather(*(gw.chat(m["key"]) for m in made))
    assert [status for status, _ in results] == [200] * 20
