"""The live config through /admin/config: changes, history, rollback, restarts, and
several processes sharing one store."""

import asyncio
import logging

import pytest
from ferro import STORES
from ferro.app import reload_file
from ferro.testing import stub_config
from ferro_admin import CONFIG_SERVICE

CORE = pytest.mark.parametrize("storage", ["sqlite", "postgres"], indirect=True)


def replying(kit, reply, **options):
    config = kit.config()
    config["providers"] = stub_config("stub", reply=reply, **options)["providers"]
    return config


async def reply_of(gw):
    status, body = await gw.chat(gw.ADMIN)  # the admin scope includes inference
    assert status == 200, body
    return body["choices"][0]["message"]["content"]


@CORE
async def test_put_applies_a_config_and_records_it(kit):
    gw = await kit.start(replying(kit, "from the file"))
    assert await reply_of(gw) == "from the file"
    status, body = await gw.call("PUT", "/admin/config", json=replying(kit, "from the api"))
    assert (status, body) == (200, {"status": "updated", "version": 1})
    assert await reply_of(gw) == "from the api"
    status, body = await gw.call("POST", "/admin/config", json=replying(kit, "posted"))
    assert (status, body) == (201, {"status": "created", "version": 2})
    assert await reply_of(gw) == "posted"
    _, shown = await gw.call("GET", "/admin/config")
    assert shown["providers"]["stub"]["reply"] == "posted"
    _, history = await gw.call("GET", "/admin/config/history")
    admin_id = (await gw.call("GET", "/admin/keys"))[1][0]["id"]
    assert history["summary"] == {"total_versions": 2}
    assert [(e["version"], e["action"], e["actor"]) for e in history["data"]] == [
        (2, "create", admin_id), (1, "update", admin_id)]
    assert history["data"][1]["config"]["providers"]["stub"]["reply"] == "from the api"
    assert history["data"][0]["updated_at"] == history["data"][0]["created_at"]


@pytest.mark.parametrize(("config", "says"), [
    ({"strategy": {"mode": "no-such-strategy"}}, "no-such-strategy"),
    ({"providers": {"x": {"type": "no-such-provider"}}}, "no-such-provider"),
    ({"targets": [{"virtual_key": "stub", "weight": "heavy"}]}, "weight"),
    ({"unknown_section": {}}, "unknown_section"),
])
async def test_an_invalid_config_is_a_400_and_the_old_one_keeps_serving(kit, config, says):
    gw = await kit.start(replying(kit, "still here"))
    status, body = await gw.call("PUT", "/admin/config", json=config)
    assert status == 400
    assert (body["error"]["type"], body["error"]["code"]) == ("invalid_request_error",
                                                              "invalid_config")
    assert says in body["error"]["message"]
    assert await reply_of(gw) == "still here"
    _, history = await gw.call("GET", "/admin/config/history")
    assert history["summary"]["total_versions"] == 0


async def test_a_config_body_must_be_a_json_object(kit):
    gw = await kit.start()
    status, body = await gw.call("PUT", "/admin/config", data="[]")
    assert (status, body["error"]["param"]) == (400, "body")


@CORE
async def test_delete_goes_back_to_the_startup_config(kit):
    gw = await kit.start(replying(kit, "file"))
    await gw.call("PUT", "/admin/config", json=replying(kit, "api"))
    status, body = await gw.call("DELETE", "/admin/config")
    assert (status, body) == (200, {"status": "deleted", "version": 2})
    assert await reply_of(gw) == "file"
    _, history = await gw.call("GET", "/admin/config/history")
    assert (history["data"][0]["action"], history["data"][0]["config"]) == ("delete", None)


@CORE
async def test_rollback_reapplies_a_version_as_a_new_one(kit):
    gw = await kit.start(replying(kit, "file"))
    for reply in ("one", "two"):
        await gw.call("PUT", "/admin/config", json=replying(kit, reply))
    await gw.call("DELETE", "/admin/config")  # version 3
    status, body = await gw.call("POST", "/admin/config/rollback/1")
    assert (status, body) == (200, {"status": "rolled_back", "rolled_back_to": 1,
                                    "current_history_size": 4, "version": 4})
    assert await reply_of(gw) == "one"
    _, history = await gw.call("GET", "/admin/config/history", params={"limit": 1})
    entry = history["data"][0]
    assert (entry["version"], entry["action"], entry["rolled_back_from"]) == (4, "rollback", 3)
    assert entry["config"]["providers"]["stub"]["reply"] == "one"
    # rolling back to a delete entry is the startup config again
    status, body = await gw.call("POST", "/admin/config/rollback/3")
    assert (status, body["version"]) == (200, 5)
    assert await reply_of(gw) == "file"


@pytest.mark.parametrize(("version", "status"), [("0", 400), ("-1", 400), ("abc", 400),
                                                 ("1.5", 400), ("99", 404)])
async def test_rollback_to_a_bad_version(kit, version, status):
    gw = await kit.start()
    await gw.call("PUT", "/admin/config", json=kit.config())
    got, body = await gw.call("POST", f"/admin/config/rollback/{version}")
    assert got == status
    if status == 400:
        assert body["error"]["param"] == "version"
    else:
        assert body["error"]["code"] == "resource_not_found"


async def test_history_is_paged_newest_first(kit):
    gw = await kit.start()
    for reply in ("a", "b", "c"):
        await gw.call("PUT", "/admin/config", json=replying(kit, reply))
    _, page = await gw.call("GET", "/admin/config/history", params={"limit": 2, "offset": 1})
    assert [e["version"] for e in page["data"]] == [2, 1]
    assert page["summary"] == {"total_versions": 3}
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        status, body = await gw.call("GET", "/admin/config/history", params=bad)
        assert (status, body["error"]["param"]) == (400, next(iter(bad)))


async def test_provider_secrets_are_masked_when_shown(kit):
    gw = await kit.start()
    config = kit.config(server={"api_keys": ["static-key-shown-nowhere-000"]})
    config["providers"]["stub"]["api_key"] = "sk-live-provider-secret"
    config["providers"]["other"] = {"type": "stub", "api_key": "${SOME_KEY:-x}"}
    assert (await gw.call("PUT", "/admin/config", json=config))[0] == 200
    for path in ("/admin/config", "/admin/config/history"):
        status, body = await gw.call("GET", path)
        assert status == 200
        assert "sk-live-provider-secret" not in str(body)
        assert "static-key-shown-nowhere-000" not in str(body)
    _, history = await gw.call("GET", "/admin/config/history")
    shown = history["data"][0]["config"]
    assert shown["providers"]["stub"]["api_key"] == "***"
    assert shown["providers"]["other"]["api_key"] == "${SOME_KEY:-x}"


async def test_a_request_in_flight_finishes_on_the_old_config_during_a_put(kit):
    gw = await kit.start(replying(kit, "slow old", delay=0.5))
    in_flight = asyncio.create_task(reply_of(gw))
    await asyncio.sleep(0.1)
    assert not in_flight.done()
    status, _ = await gw.call("PUT", "/admin/config", json=replying(kit, "new"))
    assert status == 200
    assert await reply_of(gw) == "new"
    assert await in_flight == "slow old"


@CORE
async def test_concurrent_puts_get_distinct_versions_and_the_last_is_in_force(kit):
    gw = await kit.start()
    results = await asyncio.gather(*(
        gw.call("PUT", "/admin/config", json=replying(kit, f"reply {i}")) for i in range(10)))
    assert sorted(body["version"] for _, body in results) == list(range(1, 11))
    _, history = await gw.call("GET", "/admin/config/history", params={"limit": 100})
    assert [e["version"] for e in history["data"]] == list(range(10, 0, -1))
    replies = {e["config"]["providers"]["stub"]["reply"] for e in history["data"]}
    assert replies == {f"reply {i}" for i in range(10)}
    latest = history["data"][0]["config"]["providers"]["stub"]["reply"]
    assert await reply_of(gw) == latest


@CORE
async def test_keys_config_and_history_survive_a_restart(kit):
    first = await kit.start(replying(kit, "file"))
    made = await first.create_key(name="kept")
    await first.call("PUT", "/admin/config", json=replying(kit, "persisted"))
    await first.client.close()

    second = await kit.start(replying(kit, "file"))
    assert await reply_of(second) == "persisted"  # the stored config wins over the file
    assert (await second.chat(made["key"]))[0] == 200
    _, history = await second.call("GET", "/admin/config/history")
    assert history["summary"]["total_versions"] == 1
    _, dashboard = await second.call("GET", "/admin/dashboard")
    assert dashboard["config"]["version"] == 1
    # DELETE after a restart still goes back to the file's config
    await second.call("DELETE", "/admin/config")
    assert await reply_of(second) == "file"


async def test_a_stored_config_that_cannot_be_built_is_skipped_at_startup(kit, caplog):
    first = await kit.start(replying(kit, "file"))
    await first.app[STORES].config.append_config({"strategy": {"mode": "gone"}}, "update")
    await first.client.close()
    with caplog.at_level(logging.ERROR, logger="ferro.admin.config"):
        second = await kit.start(replying(kit, "file"))
    assert await reply_of(second) == "file"
    assert "config version 1" in caplog.text and "gone" in caplog.text


@CORE
async def test_every_process_sharing_the_store_converges_on_the_latest_version(kit):
    one = await kit.start(replying(kit, "file"))
    app = kit.app(replying(kit, "file"))
    app[CONFIG_SERVICE].poll_interval = 0.05
    other = await kit.start(app=app)
    await one.call("PUT", "/admin/config", json=replying(kit, "shared"))
    for _ in range(100):
        if await reply_of(other) == "shared":
            break
        await asyncio.sleep(0.05)
    assert await reply_of(other) == "shared"
    await other.call("DELETE", "/admin/config")
    assert await reply_of(other) == "file"


async def test_config_changes_need_a_config_store(kit):
    keys_only = {"keys": kit.storage["keys"]}
    gw = await kit.start(kit.config(storage=keys_only))
    assert (await gw.call("GET", "/admin/config"))[0] == 200
    for method, path in (("PUT", "/admin/config"), ("GET", "/admin/config/history"),
                         ("DELETE", "/admin/config"), ("POST", "/admin/config/rollback/1")):
        status, body = await gw.call(method, path, json=kit.config())
        assert (status, body["error"]["code"]) == (501, "not_implemented"), path
        assert "storage.config" in body["error"]["message"]


async def test_a_change_the_store_cannot_record_is_undone(kit, monkeypatch):
    gw = await kit.start(replying(kit, "kept"))

    async def down(*args, **kwargs):
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(gw.app[STORES].config, "append_config", down)
    status, body = await gw.call("PUT", "/admin/config", json=replying(kit, "lost"))
    assert (status, body["error"]["code"]) == (503, "config_store_unavailable")
    assert await reply_of(gw) == "kept"


async def test_a_reloaded_config_file_is_served_when_no_config_was_set_through_the_api(kit):
    gw = await kit.start(replying(kit, "file"))
    reload_file(gw.app, gw.app[CONFIG_SERVICE].parse(replying(kit, "file, edited")))
    assert await reply_of(gw) == "file, edited"
    await gw.call("PUT", "/admin/config", json=replying(kit, "api"))
    await gw.call("DELETE", "/admin/config")
    assert await reply_of(gw) == "file, edited"
    reload_file(gw.app, gw.app[CONFIG_SERVICE].parse(replying(kit, "file, edited again")))
    assert await reply_of(gw) == "file, edited again"


@CORE
async def test_a_config_set_through_the_api_stays_in_force_when_the_file_is_reloaded(kit):
    gw = await kit.start(replying(kit, "file"))
    await gw.call("PUT", "/admin/config", json=replying(kit, "api"))
    reload_file(gw.app, gw.app[CONFIG_SERVICE].parse(replying(kit, "file, edited")))
    assert await reply_of(gw) == "api"
    _, history = await gw.call("GET", "/admin/config/history")
    assert history["summary"]["total_versions"] == 1
    await gw.call("DELETE", "/admin/config")  # back to the file: as it is now
    assert await reply_of(gw) == "file, edited"


async def test_a_change_the_store_cannot_record_while_the_file_is_reloaded(kit, monkeypatch):
    gw = await kit.start(replying(kit, "file"))

    async def down(*args, **kwargs):
        reload_file(gw.app, gw.app[CONFIG_SERVICE].parse(replying(kit, "file, edited")))
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(gw.app[STORES].config, "append_config", down)
    status, _ = await gw.call("PUT", "/admin/config", json=replying(kit, "lost"))
    assert status == 503
    assert await reply_of(gw) == "file, edited"  # not the file as it was before
