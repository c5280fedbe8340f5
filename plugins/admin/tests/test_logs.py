"""The request log through /admin/logs: rows, filters, paging, stats and pruning."""

import asyncio

import pytest
from ferro import REQUEST_LOG

CORE = pytest.mark.parametrize("storage", ["sqlite", "postgres"], indirect=True)

ROW_FIELDS = {"id", "created_at", "request_id", "trace_id", "key_id", "operation", "provider",
              "model", "status", "stage", "latency_ms", "ttfb_ms", "prompt_tokens",
              "completion_tokens", "total_tokens", "cost", "attempts", "stream", "error_type",
              "error_message"}


async def written(gw, count):
    """Wait (bounded) until the request log has written ``count`` rows."""
    writer = gw.app[REQUEST_LOG]
    for _ in range(200):
        if writer.written >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{writer.written} of {count} rows written")


async def traffic(gw, kit):
    """Three answers (two for the priced model) and one invalid request: four rows."""
    made = await gw.create_key(name="caller")
    for model in (kit.PRICED_MODEL, kit.PRICED_MODEL, "cheap-model"):
        assert (await gw.chat(made["key"], model))[0] == 200
    status, _ = await gw.call("POST", "/v1/chat/completions", key=made["key"],
                              json={"model": "cheap-model"})
    assert status == 400
    await written(gw, 4)
    return made


@CORE
async def test_rows_are_listed_newest_first_and_filtered(kit):
    gw = await kit.start()
    made = await traffic(gw, kit)
    status, page = await gw.call("GET", "/admin/logs")
    assert status == 200
    assert page["summary"] == {"total_entries": 4, "returned_entries": 4}
    assert all(set(row) == ROW_FIELDS for row in page["data"])
    newest = page["data"][0]
    assert (newest["stage"], newest["status"], newest["key_id"]) == ("on_error", 400, made["id"])
    assert newest["error_message"]
    _, priced = await gw.call("GET", "/admin/logs", params={"model": kit.PRICED_MODEL})
    assert priced["summary"]["total_entries"] == 2
    assert all(r["cost"] == pytest.approx(kit.COST_PER_CALL) for r in priced["data"])
    assert priced["filters"] == {"model": kit.PRICED_MODEL, "limit": 50, "offset": 0}
    _, errors = await gw.call("GET", "/admin/logs", params={"stage": "on_error"})
    assert errors["summary"]["total_entries"] == 1
    _, by_key = await gw.call("GET", "/admin/logs", params={"key_id": made["id"]})
    assert by_key["summary"]["total_entries"] == 4
    _, none = await gw.call("GET", "/admin/logs", params={"since": "2999-01-01T00:00:00Z"})
    assert none["summary"]["total_entries"] == 0
    _, paged = await gw.call("GET", "/admin/logs", params={"limit": 3, "offset": 2})
    assert paged["summary"] == {"total_entries": 4, "returned_entries": 2}
    assert [r["id"] for r in paged["data"]] == [r["id"] for r in page["data"][2:]]


@CORE
async def test_stats_sum_up_the_selected_rows(kit):
    gw = await kit.start()
    await traffic(gw, kit)
    status, stats = await gw.call("GET", "/admin/logs/stats")
    assert status == 200
    assert stats["summary"] == {"total_entries": 4, "error_entries": 1, "total_tokens": 21,
                                "total_cost": pytest.approx(2 * kit.COST_PER_CALL)}
    assert stats["by_stage"] == {"after_request": 3, "on_error": 1}
    # the invalid request was refused before its model was read
    assert stats["by_model"] == {kit.PRICED_MODEL: 2, "cheap-model": 1, "unknown": 1}
    _, capped = await gw.call("GET", "/admin/logs/stats", params={"limit": 1})
    assert len(capped["by_model"]) == 1
    _, priced = await gw.call("GET", "/admin/logs/stats", params={"model": kit.PRICED_MODEL})
    assert priced["summary"]["total_entries"] == 2


@CORE
async def test_delete_prunes_rows_before_a_time(kit):
    gw = await kit.start()
    await traffic(gw, kit)
    status, body = await gw.call("DELETE", "/admin/logs")
    assert (status, body["error"]["param"]) == (400, "before")
    status, body = await gw.call("DELETE", "/admin/logs", params={
        "before": "2999-01-01T00:00:00Z", "model": kit.PRICED_MODEL})
    assert (status, body["deleted"]) == (200, 2)
    assert body["filters"] == {"before": "2999-01-01T00:00:00Z", "model": kit.PRICED_MODEL}
    _, left = await gw.call("GET", "/admin/logs")
    assert left["summary"]["total_entries"] == 2
    _, none = await gw.call("DELETE", "/admin/logs", params={"before": "2000-01-01T00:00:00Z"})
    assert none["deleted"] == 0


@pytest.mark.parametrize(("path", "query", "param"), [
    ("/admin/logs", {"limit": "201"}, "limit"),
    ("/admin/logs", {"limit": "0"}, "limit"),
    ("/admin/logs", {"offset": "x"}, "offset"),
    ("/admin/logs", {"since": "last week"}, "since"),
    ("/admin/logs/stats", {"limit": "101"}, "limit"),
    ("/admin/logs/stats", {"since": "2025-13-01T00:00:00Z"}, "since"),
])
async def test_bad_log_queries_are_400s_naming_the_param(kit, path, query, param):
    gw = await kit.start()
    status, body = await gw.call("GET", path, params=query)
    assert (status, body["error"]["param"]) == (400, param)


async def test_an_offset_written_with_an_unencoded_plus_is_understood(kit):
    gw = await kit.start()
    await traffic(gw, kit)
    status, body = await gw.call("GET", "/admin/logs?since=2000-01-01T00:00:00+00:00")
    assert (status, body["summary"]["total_entries"]) == (200, 4)


async def test_logs_without_a_log_store_are_a_501(kit):
    gw = await kit.start(kit.config(storage={"keys": kit.storage["keys"]}))
    for method, path in (("GET", "/admin/logs"), ("GET", "/admin/logs/stats"),
                         ("DELETE", "/admin/logs?before=2030-01-01T00:00:00Z")):
        status, body = await gw.call(method, path)
        assert (status, body["error"]["code"]) == (501, "not_implemented"), path
        assert "storage.request_logs" in body["error"]["message"]
