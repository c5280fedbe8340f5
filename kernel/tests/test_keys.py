"""Stored API keys: the secret's shape, what the store keeps, and how the gateway checks
keys on its routes (scopes, models, budgets, rotation, a store that is down)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from ferro import PIPELINE, AuthenticationError, Exchange, Identity, Usage
from ferro.keys import (
    BudgetExceededError,
    KeyRing,
    KeyStoreUnavailableError,
    check_scopes,
    hash_secret,
    scopes_allow,
)
from ferro.storage import utcnow
from ferro.testing import stub_config

CHAT = {"model": "stub-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def ring(memory_storage: Any) -> Any:
    """``await ring()``: a started KeyRing over a fresh in-memory store."""

    async def make() -> KeyRing:
        keys = KeyRing(memory_storage(), ttl=60)
        await keys.start({})
        return keys

    return make


def exchange(identity: Identity, cost: float | None) -> Exchange:
    return Exchange(request_id="r", operation="chat", model="m", provider="p", stream=False,
                    status=200, started=0.0, duration=0.1, usage=Usage(), cost=cost,
                    identity=identity)


async def test_a_secret_has_256_random_bits_and_only_its_hash_is_stored(ring: Any) -> None:
    keys = await ring()
    record, secret = await keys.create("ci", ["inference"])
    assert secret.startswith("fgw_") and len(secret) == 4 + 43
    stored = keys.storage.keys[record.id]
    assert stored.key_hash == hash_secret(secret) and secret not in repr(stored)
    assert stored.display == f"{secret[:8]}...{secret[-4:]}"
    _, other = await keys.create("ci", ["inference"])
    assert other != secret
    await keys.aclose()


async def test_identify_knows_active_keys_and_refuses_revoked_and_expired_ones(ring: Any) -> None:
    keys = await ring()
    record, secret = await keys.create("app", ["inference"], models=["gpt-x"], budget=2.0)
    identity = await keys.identify(secret)
    assert identity is not None and identity.key_id == record.id
    assert identity.scopes == {"inference"} and identity.attributes["models"] == {"gpt-x"}
    assert await keys.identify(secret + "x") is None
    await keys.revoke(record.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await keys.identify(secret)
    _, secret2 = await keys.create("old", ["admin"], expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(AuthenticationError, match="expired"):
        await keys.identify(secret2)
    await keys.aclose()


async def test_rotation_stops_the_old_secret_at_once_even_when_it_was_cached(ring: Any) -> None:
    keys = await ring()
    record, old = await keys.create("app", ["inference"])
    assert await keys.identify(old) is not None  # now cached for a minute
    rotated = await keys.rotate(record.id)
    assert rotated is not None
    assert await keys.identify(old) is None
    assert (await keys.identify(rotated[1])).key_id == record.id  # type: ignore[union-attr]
    assert await keys.rotate("no-such-id") is None
    await keys.aclose()


async def test_admit_checks_the_inference_scope_the_models_and_the_budget(ring: Any) -> None:
    keys = await ring()
    _, reader = await keys.create("reader", ["read_only"])
    with pytest.raises(Exception, match="no inference scope") as info:
        keys.admit(await keys.identify(reader), "m")  # type: ignore[arg-type]
    assert info.value.status == 403  # type: ignore[attr-defined]
    _, narrow = await keys.create("narrow", ["inference"], models=["small"], budget=1.0)
    who = await keys.identify(narrow)
    assert who is not None
    keys.admit(who, "small")
    with pytest.raises(Exception, match="may not use model 'big'") as info:
        keys.admit(who, "big")
    assert info.value.code == "model_not_allowed"  # type: ignore[attr-defined]
    keys.record(exchange(who, 0.6))
    keys.admit(who, "small")  # 0.6 of 1.0 spent
    keys.record(exchange(who, 0.5))
    with pytest.raises(BudgetExceededError) as spent:
        keys.admit(who, "small")
    assert spent.value.status == 429 and spent.value.code == "budget_exceeded"
    await keys.aclose()


async def test_usage_is_written_in_one_batch_and_kept_when_the_write_fails(ring: Any) -> None:
    keys = await ring()
    record, secret = await keys.create("app", ["inference"])
    who = await keys.identify(secret)
    assert who is not None
    for _ in range(3):
        keys.record(exchange(who, 0.25))
    keys.record(exchange(Identity(key_id="cfg-abc"), 1.0))  # config keys are not stored
    keys.storage.down = True
    await keys.flush()
    keys.record(exchange(who, 0.25))
    keys.storage.down = False
    await keys.flush()
    stored = keys.storage.keys[record.id]
    assert stored.usage_count == 4 and stored.spent == pytest.approx(1.0)
    assert stored.last_used_at is not None
    await keys.aclose()


async def test_bootstrap_keys_are_made_only_while_no_key_exists(memory_storage: Any) -> None:
    storage = memory_storage()
    first = KeyRing(storage)
    await first.start({"ADMIN_BOOTSTRAP_KEY": "admin-secret-0123456789",
                       "ADMIN_BOOTSTRAP_READ_ONLY_KEY": "reader-secret-0123456789"})
    assert sorted(r.scopes[0] for r in storage.keys.values()) == ["admin", "read_only"]
    assert (await first.identify("admin-secret-0123456789")).scopes == {"admin"}  # type: ignore[union-attr]
    await first.aclose()
    again = KeyRing(storage)
    await again.start({"ADMIN_BOOTSTRAP_KEY": "another-secret-0123456789"})
    assert len(storage.keys) == 2 and await again.identify("another-secret-0123456789") is None
    await again.aclose()
    empty = memory_storage()
    for env in ({"ADMIN_BOOTSTRAP_KEY": "short"},
                {"ADMIN_BOOTSTRAP_KEY": "admin-secret-0123456789",
                 "ADMIN_BOOTSTRAP_ENABLED": "false"}):
        keys = KeyRing(empty)
        await keys.start(env)
        await keys.aclose()
    assert empty.keys == {}


async def test_a_store_that_is_down_is_a_503_for_unknown_keys_not_for_cached_ones(ring: Any) -> None:
    keys = await ring()
    _, secret = await keys.create("app", ["inference"])
    assert await keys.identify(secret) is not None
    keys.storage.down = True
    assert await keys.identify(secret) is not None
    with pytest.raises(KeyStoreUnavailableError) as info:
        await keys.identify("fgw_unknown")
    assert info.value.status == 503 and info.value.headers["Retry-After"] == "1"
    keys.storage.down = False
    await keys.aclose()


def test_scopes() -> None:
    assert check_scopes(["inference", "admin", "admin"]) == ["admin", "inference"]
    with pytest.raises(ValueError, match=r"unknown scope.*root"):
        check_scopes(["root"])
    with pytest.raises(ValueError, match="at least one"):
        check_scopes([])
    assert scopes_allow(["admin"], "read_only") and scopes_allow(["admin"], "inference")
    assert not scopes_allow(["read_only"], "inference")
    assert not scopes_allow(["inference"], "read_only")


# --- on the gateway's routes ------------------------------------------------------------------


def keyed_config(**server: Any) -> dict[str, Any]:
    return {**stub_config(), "server": server,
            "storage": {"keys": {"backend": "kernel-test-memory", "dsn": "keys"},
                        "request_logs": {"backend": "kernel-test-memory", "dsn": "keys"}}}


async def test_v1_is_open_until_a_key_exists_then_needs_one(ferro_client: Any,
                                                             storage_plugins: Any) -> None:
    client = await ferro_client(keyed_config(), pm=storage_plugins)
    assert (await client.post("/v1/chat/completions", json=CHAT)).status == 200
    keys = client.app[PIPELINE].keys
    _, secret = await keys.create("app", ["inference"])
    refused = await client.post("/v1/chat/completions", json=CHAT)
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "invalid_api_key"
    bad = await client.post("/v1/chat/completions", json=CHAT,
                            headers={"Authorization": "Bearer fgw_nope"})
    assert bad.status == 401
    ok = await client.post("/v1/chat/completions", json=CHAT,
                           headers={"Authorization": f"Bearer {secret}"})
    assert ok.status == 200
    _, reader = await keys.create("reader", ["read_only"])
    denied = await client.post("/v1/chat/completions", json=CHAT,
                               headers={"Authorization": f"Bearer {reader}"})
    assert denied.status == 403
    assert (await denied.json())["error"]["code"] == "insufficient_scope"


async def test_open_inference_serves_callers_without_a_key_but_checks_a_sent_one(
        ferro_client: Any, storage_plugins: Any) -> None:
    client = await ferro_client(keyed_config(open_inference=True), pm=storage_plugins)
    await client.app[PIPELINE].keys.create("app", ["inference"])
    assert (await client.post("/v1/chat/completions", json=CHAT)).status == 200
    wrong = await client.post("/v1/chat/completions", json=CHAT,
                              headers={"Authorization": "Bearer fgw_wrong"})
    assert wrong.status == 401


async def test_config_keys_and_stored_keys_both_work_and_rows_are_logged(
        ferro_client: Any, storage_plugins: Any, memory_storage: Any) -> None:
    client = await ferro_client(keyed_config(api_keys=["config-key"]), pm=storage_plugins)
    record, secret = await client.app[PIPELINE].keys.create("app", ["inference"])
    for key in ("config-key", secret):
        reply = await client.post("/v1/chat/completions", json=CHAT,
                                  headers={"Authorization": f"Bearer {key}"})
        assert reply.status == 200
    assert (await client.post("/v1/chat/completions", json=CHAT)).status == 401
    await client.close()  # the shutdown writes the queued rows and the usage
    storage = memory_storage.instances[0]
    assert len(memory_storage.instances) == 1  # both stores share one backend instance
    assert storage.closed
    assert [(r.status, r.stage) for r in storage.rows] == [
        (200, "after_request"), (200, "after_request"), (401, "on_error")]
    assert storage.rows[1].key_id == record.id and storage.rows[0].key_id.startswith("cfg-")
    assert storage.keys[record.id].usage_count == 1


async def test_a_spent_budget_stays_spent_once_the_use_is_written(ring: Any) -> None:
    keys = await ring()
    _, secret = await keys.create("app", ["inference"], budget=1.0)
    who = await keys.identify(secret)
    keys.record(exchange(who, 1.5))  # type: ignore[arg-type]
    await keys.flush()
    again = await keys.identify(secret)  # from the cache, written use included
    with pytest.raises(BudgetExceededError):
        keys.admit(again, "m")  # type: ignore[arg-type]
    await keys.aclose()


async def test_keys_seen_lately_keep_working_while_the_store_is_down(ring: Any) -> None:
    keys = await ring()
    keys.ttl = 0.0
    keys._cache = type(keys._cache)(10, 0.001)  # lookups expire at once
    _, secret = await keys.create("app", ["inference"])
    assert await keys.identify(secret) is not None
    keys.storage.down = True
    await asyncio.sleep(0.01)
    assert await keys.identify(secret) is not None
    with pytest.raises(KeyStoreUnavailableError):
        await keys.identify("fgw_never_seen")
    keys.storage.down = False
    await keys.aclose()
