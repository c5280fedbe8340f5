"""``ferrogw-cli admin`` against a real HTTP server on 127.0.0.1 that answers the /admin
routes the way the management API does, recording every request: what each command sends,
the three outputs, errors and exit codes, the environment variables, key-id completion, and
that the API key never reaches the terminal.

The CLI is synchronous, so each run goes to a worker thread while the event loop serves it.
"""

import asyncio
import importlib.metadata
import json
import socket
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import click
import pytest
from aiohttp import web
from click.testing import CliRunner, Result
from ferro.testing import stub_config
from ferro_admin.cli import OUTPUTS, SHOWN_ONCE, admin
from ruamel.yaml import YAML

ADMIN_KEY = "fgw_" + "A" * 43
READER_KEY = "fgw_" + "R" * 43
NEW_SECRET = "fgw_" + "N" * 43
KEY_ID = "0f8e2a4c-1b3d-4e5f-9a7b-6c5d4e3f2a1b"
OTHER_ID = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"


def key(key_id=KEY_ID, name="ci", secret=None):
    return {"id": key_id, "name": name, "key": secret or "fgw_AbCd...wxyz",
            "scopes": ["inference"], "status": "active", "active": True,
            "created_at": "2025-01-31T12:00:00Z", "expires_at": None, "revoked_at": None,
            "rotated_at": None, "last_used_at": "2025-02-01T08:30:00Z", "usage_count": 42,
            "models": [], "budget": 10.0, "spent": 1.25}


KEYS = [key(), key(OTHER_ID, "batch-jobs")]
LOG = {"id": 7, "created_at": "2025-02-01T08:30:00Z", "request_id": "req-1", "trace_id": "t",
       "key_id": KEY_ID, "operation": "chat", "provider": "openai", "model": "gpt-4o",
       "status": 200, "stage": "after_request", "latency_ms": 812, "ttfb_ms": 300,
       "prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "cost": 0.0004,
       "attempts": 1, "stream": False, "error_type": None, "error_message": None}
ANSWERS = {
    "GET /admin/keys": KEYS,
    "GET /admin/keys/usage": {"data": KEYS, "summary": {"total_keys": 2, "active_keys": 2,
                                                        "total_usage": 84, "returned_keys": 2},
                              "filters": {}},
    "GET /admin/keys/{id}": key(),
    "POST /admin/keys": (201, key(secret=NEW_SECRET)),
    "PUT /admin/keys/{id}": key(name="renamed"),
    "DELETE /admin/keys/{id}": 204,
    "POST /admin/keys/{id}/revoke": {"status": "revoked"},
    "POST /admin/keys/{id}/rotate": key(secret=NEW_SECRET),
    "GET /admin/config": {"strategy": {"mode": "fallback"},
                          "providers": {"openai": {"api_key": "***"}}},
    "GET /admin/config/history": {"data": [{"version": 2, "created_at": "2025-02-01T00:00:00Z",
                                            "updated_at": "2025-02-01T00:00:00Z",
                                            "action": "update", "actor": KEY_ID, "config": {}}],
                                  "summary": {"total_versions": 2}},
    "PUT /admin/config": {"status": "updated", "version": 3},
    "DELETE /admin/config": {"status": "deleted", "version": 4},
    "POST /admin/config/rollback/{version}": {"status": "rolled_back", "rolled_back_to": 1,
                                              "current_history_size": 5, "version": 5},
    "GET /admin/logs": {"data": [LOG], "summary": {"total_entries": 1, "returned_entries": 1},
                        "filters": {}},
    "GET /admin/logs/stats": {"summary": {"total_entries": 1, "error_entries": 0,
                                          "total_tokens": 30, "total_cost": 0.0004},
                              "by_stage": {"after_request": 1},
                              "by_provider": {"openai": {"entries": 1, "tokens": 30}},
                              "by_model": {}, "filters": {}},
    "DELETE /admin/logs": {"deleted": 12, "filters": {}},
    "GET /admin/providers": [{"name": "openai", "type": "openai", "models": [
        {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"},
        {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"}]}],
    "GET /admin/health": {"status": "degraded", "providers": [
        {"name": "openai", "status": "healthy", "models": 2, "breaker": "closed"},
        {"name": "groq", "status": "unhealthy", "models": 4, "breaker": "open",
         "message": "3 failures in a row"}]},
    "GET /admin/dashboard": {"providers": {"total": 2, "available": 1},
                             "keys": {"total": 2, "active": 2, "expired": 0, "revoked": 0,
                                      "total_usage": 84},
                             "request_logs": {"enabled": True, "total": 1, "dropped": 0},
                             "config": {"version": 5, "strategy": "fallback"}},
}


def api_error(status, message, type_, code, param=None):
    return web.json_response({"error": {"message": message, "type": type_, "code": code,
                                        "param": param}}, status=status)


def answering(spec, answer):
    """A handler that checks the key as the API does (readers may only GET), then answers."""
    method = spec.split(" ")[0]

    async def handler(request):
        header = request.headers.get("Authorization")
        if header is None:
            return api_error(401, "Missing API key", "authentication_error", "missing_api_key")
        if header not in (f"Bearer {ADMIN_KEY}", f"Bearer {READER_KEY}"):
            return api_error(401, "Invalid API key", "authentication_error", "invalid_api_key")
        if method != "GET" and header != f"Bearer {ADMIN_KEY}":
            return api_error(403, "This key lacks the admin scope", "permission_error",
                             "insufficient_scope")
        if request.match_info.get("id", KEY_ID) not in (KEY_ID, OTHER_ID):
            return api_error(404, "API key not found", "invalid_request_error",
                             "resource_not_found")
        if answer == 204:
            return web.Response(status=204)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return web.json_response(body, status=status)

    return handler


def replying(make_response):
    """A handler answering every request with a fresh ``make_response()``."""

    async def handler(_request):
        return make_response()

    return handler


@pytest.fixture
async def gateway(fake_upstream):
    return await fake_upstream({spec: answering(spec, answer) for spec, answer in ANSWERS.items()})


def invoke(*args, env=None, input=None, cli=admin, prog_name="ferrogw-cli admin"):
    """Run the CLI in a worker thread (the server shares this thread's loop)."""
    return asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, input=input,
                             prog_name=prog_name)


async def run(gateway, *args, key=ADMIN_KEY, env=None, input=None) -> Result:
    """``ferrogw-cli admin --gateway-url <the fake> --api-key <key> ARGS``, nothing from the
    environment unless ``env`` says so."""
    base = {"FERROGW_URL": None, "FERROGW_API_KEY": None, "FERROGW_OUTPUT": None}
    options = ["--gateway-url", gateway.url, *(["--api-key", key] if key else [])]
    return await invoke(*options, *args, env={**base, **(env or {})}, input=input)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what each command sends ---------------------------------------------------------------

SENT = [
    (["keys", "list"], "GET", "/admin/keys", {}, None),
    (["keys", "get", KEY_ID], "GET", f"/admin/keys/{KEY_ID}", {}, None),
    (["keys", "create", "--name", "ci"], "POST", "/admin/keys", {}, {"name": "ci"}),
    (["keys", "create", "--name", "ci", "--scope", "admin", "--scope", "read_only",
      "--expires-in", "720h", "--model", "gpt-4o", "--model", "o3", "--budget", "12.5"],
     "POST", "/admin/keys", {},
     {"name": "ci", "scopes": ["admin", "read_only"], "expires_in": 720 * 3600,
      "models": ["gpt-4o", "o3"], "budget": 12.5}),
    (["keys", "create", "--name", "ci", "--expires-in", "90"], "POST", "/admin/keys", {},
     {"name": "ci", "expires_in": 90}),
    (["keys", "update", KEY_ID, "--name", "new", "--scope", "inference", "--clear-expiration",
      "--any-model", "--clear-budget"], "PUT", f"/admin/keys/{KEY_ID}", {},
     {"name": "new", "scopes": ["inference"], "clear_expiration": True, "models": [],
      "clear_budget": True}),
    (["keys", "update", KEY_ID, "--model", "gpt-4o", "--budget", "3"], "PUT",
     f"/admin/keys/{KEY_ID}", {}, {"models": ["gpt-4o"], "budget": 3.0}),
    (["keys", "delete", KEY_ID, "--yes"], "DELETE", f"/admin/keys/{KEY_ID}", {}, None),
    (["keys", "revoke", KEY_ID], "POST", f"/admin/keys/{KEY_ID}/revoke", {}, None),
    (["keys", "rotate", KEY_ID], "POST", f"/admin/keys/{KEY_ID}/rotate", {}, None),
    (["keys", "usage"], "GET", "/admin/keys/usage", {}, None),
    (["keys", "usage", "--limit", "5", "--offset", "10", "--sort", "last_used", "--inactive",
      "--since", "2025-01-31T12:00:00Z"], "GET", "/admin/keys/usage",
     {"limit": "5", "offset": "10", "sort": "last_used", "active": "false",
      "since": "2025-01-31T12:00:00Z"}, None),
    (["keys", "usage", "--active", "--since", "2025-01-31T13:00:00+01:00"], "GET",
     "/admin/keys/usage", {"active": "true", "since": "2025-01-31T12:00:00Z"}, None),
    (["config", "get"], "GET", "/admin/config", {}, None),
    (["config", "history", "--limit", "3", "--offset", "1"], "GET", "/admin/config/history",
     {"limit": "3", "offset": "1"}, None),
    (["config", "rollback", "1"], "POST", "/admin/config/rollback/1", {}, None),
    (["config", "reset", "--yes"], "DELETE", "/admin/config", {}, None),
    (["logs", "list"], "GET", "/admin/logs", {}, None),
    (["logs", "list", "--limit", "2", "--offset", "4", "--provider", "openai", "--model", "gpt-4o",
      "--stage", "on_error", "--key-id", KEY_ID, "--since", "2025-02-01T00:00:00Z"],
     "GET", "/admin/logs", {"limit": "2", "offset": "4", "provider": "openai", "model": "gpt-4o",
                            "stage": "on_error", "key_id": KEY_ID,
                            "since": "2025-02-01T00:00:00Z"}, None),
    (["logs", "stats", "--limit", "3", "--provider", "openai"], "GET", "/admin/logs/stats",
     {"limit": "3", "provider": "openai"}, None),
    (["logs", "delete", "--before", "2025-02-01T00:00:00Z", "--stage", "on_error", "--yes"],
     "DELETE", "/admin/logs", {"before": "2025-02-01T00:00:00Z", "stage": "on_error"}, None),
    (["providers", "list"], "GET", "/admin/providers", {}, None),
    (["health"], "GET", "/admin/health", {}, None),
    (["dashboard"], "GET", "/admin/dashboard", {}, None),
]


@pytest.mark.parametrize(("args", "method", "path", "query", "body"), SENT,
                         ids=[" ".join(case[0][:3]) for case in SENT])
async def test_each_command_sends_its_request_with_the_key(gateway, args, method, path, query,
                                                           body):
    result = await run(gateway, *args)

    assert result.exit_code == 0, result.output
    [sent] = gateway.requests
    assert (sent.method, sent.path, sent.query) == (method, path, query)
    assert sent.headers["Authorization"] == f"Bearer {ADMIN_KEY}"
    assert (sent.json() if sent.body else None) == body


async def test_update_expires_in_becomes_a_time_that_far_from_now(gateway):
    before = datetime.now(UTC)
    result = await run(gateway, "keys", "update", KEY_ID, "--expires-in", "2h")
    after = datetime.now(UTC)

    assert result.exit_code == 0, result.output
    expires_at = datetime.fromisoformat(gateway.requests[0].json()["expires_at"])
    assert (before + timedelta(hours=2)).replace(microsecond=0) <= expires_at
    assert expires_at <= after + timedelta(hours=2)


async def test_since_as_a_duration_means_that_long_ago(gateway):
    before = datetime.now(UTC)
    result = await run(gateway, "logs", "list", "--since", "24h")

    assert result.exit_code == 0, result.output
    since = datetime.fromisoformat(gateway.requests[0].query["since"])
    assert before - timedelta(hours=24, seconds=1) <= since <= datetime.now(UTC) - timedelta(hours=24)


@pytest.mark.parametrize("suffix", ["yaml", "json"])
async def test_config_set_sends_the_file_as_json(gateway, tmp_path, suffix):
    config = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "openai"}],
              "providers": {"openai": {"api_key": "${OPENAI_API_KEY}"}}}
    path = tmp_path / f"gateway.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(config))
    else:
        path.write_text("strategy:\n  mode: fallback\ntargets:\n  - virtual_key: openai\n"
                        "providers:\n  openai:\n    api_key: ${OPENAI_API_KEY}\n")

    result = await run(gateway, "config", "set", "--file", str(path))

    assert result.exit_code == 0, result.output
    [sent] = gateway.requests
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "PUT", "/admin/config", "application/json")
    assert sent.json() == config
    assert result.stdout == "Config applied: now version 3.\n"


async def test_config_set_reads_stdin(gateway):
    result = await run(gateway, "config", "set", "-f", "-", input="strategy: {mode: single}\n")

    assert result.exit_code == 0, result.output
    assert gateway.requests[0].json() == {"strategy": {"mode": "single"}}


@pytest.mark.parametrize(("text", "says"), [("a: [unclosed\n", "neither JSON nor YAML"),
                                            ("- a\n- b\n", "must hold a mapping")])
async def test_config_set_refuses_a_file_that_is_not_a_config(gateway, tmp_path, text, says):
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    result = await run(gateway, "config", "set", "--file", str(path))

    assert result.exit_code == 2
    assert says in result.stderr
    assert gateway.requests == []


# --- outputs -------------------------------------------------------------------------------


async def test_table_output_aligns_columns_and_shows_only_masked_keys(gateway):
    result = await run(gateway, "keys", "list")

    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KEY", "SCOPES", "STATUS", "EXPIRES", "LAST",
                                "USED", "USES"]
    assert [line.split()[:2] for line in lines[1:]] == [[KEY_ID, "ci"], [OTHER_ID, "batch-jobs"]]
    starts = {line.index("fgw_AbCd...wxyz") for line in lines[1:]}
    assert starts == {lines[0].index("KEY")}
    assert "42" in lines[1]
    assert NEW_SECRET not in result.output
    assert SHOWN_ONCE not in result.output


async def test_json_output_is_the_apis_json(gateway):
    result = await run(gateway, "--output", "json", "health")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == ANSWERS["GET /admin/health"]


async def test_yaml_output_is_the_same_data(gateway):
    result = await run(gateway, "-o", "yaml", "keys", "usage")

    assert result.exit_code == 0
    assert YAML(typ="safe").load(result.stdout) == ANSWERS["GET /admin/keys/usage"]
    assert result.stdout.startswith("data:\n")  # the API's key order, not sorted


@pytest.mark.parametrize("command", [["keys", "create", "--name", "ci"], ["keys", "rotate", KEY_ID]])
async def test_a_new_secret_is_printed_with_a_shown_once_warning(gateway, command):
    result = await run(gateway, *command)

    assert result.exit_code == 0, result.output
    assert f"key           {NEW_SECRET}" in result.stdout
    assert SHOWN_ONCE in result.stderr


async def test_json_output_of_a_new_key_stays_parseable(gateway):
    result = await run(gateway, "-o", "json", "keys", "create", "--name", "ci")

    assert json.loads(result.stdout)["key"] == NEW_SECRET
    assert SHOWN_ONCE in result.stderr


async def test_health_table_shows_each_provider_and_its_breaker(gateway):
    result = await run(gateway, "health")

    lines = result.stdout.splitlines()
    assert lines[0] == "Status: degraded"
    assert lines[2].split() == ["PROVIDER", "STATUS", "MODELS", "BREAKER", "MESSAGE"]
    assert lines[3].split() == ["openai", "healthy", "2", "closed", "-"]
    assert lines[4].split()[:4] == ["groq", "unhealthy", "4", "open"]
    assert lines[4].endswith("3 failures in a row")


async def test_other_tables_show_what_the_api_answered(gateway):
    providers = (await run(gateway, "providers", "list")).stdout
    assert providers.splitlines()[1].split() == ["openai", "openai", "gpt-4o,", "gpt-4o-mini"]

    logs = (await run(gateway, "logs", "list")).stdout
    assert logs.splitlines()[1].split() == ["2025-02-01T08:30:00Z", "openai", "gpt-4o",
                                            "after_request", "200", "812", "30", "0.0004", "-"]
    assert "total_entries     1" in logs

    stats = (await run(gateway, "logs", "stats")).stdout
    assert "total_tokens   30" in stats
    assert "openai    1        30" in stats
    assert "No entries by model." in stats

    history = (await run(gateway, "config", "history")).stdout
    assert history.splitlines()[1].split()[:3] == ["2", "2025-02-01T00:00:00Z", "update"]
    assert history.endswith("2 versions in total\n")

    dashboard = (await run(gateway, "dashboard")).stdout
    assert "request_logs  enabled yes, total 1, dropped 0" in dashboard

    config = (await run(gateway, "config", "get")).stdout
    assert YAML(typ="safe").load(config) == ANSWERS["GET /admin/config"]


async def test_short_answers_are_one_sentence(gateway):
    assert (await run(gateway, "keys", "revoke", KEY_ID)).stdout == f"Key {KEY_ID} revoked.\n"
    assert (await run(gateway, "keys", "delete", KEY_ID, "-y")).stdout == f"Key {KEY_ID} deleted.\n"
    assert (await run(gateway, "config", "rollback", "1")).stdout == (
        "Rolled back to version 1: now version 5.\n")
    assert (await run(gateway, "logs", "delete", "--before", "1h", "--yes")).stdout == (
        "Deleted 12 log entries.\n")


# --- confirmation --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["keys", "delete", KEY_ID], ["config", "reset"],
                                     ["logs", "delete", "--before", "720h"]])
async def test_destructive_commands_ask_first_and_stop_on_no(gateway, command):
    declined = await run(gateway, *command, input="n\n")

    assert declined.exit_code == 1
    assert "Aborted" in declined.stderr
    assert gateway.requests == []

    accepted = await run(gateway, *command, input="y\n")

    assert accepted.exit_code == 0, accepted.output
    assert [r.method for r in gateway.requests] == ["DELETE"]


# --- errors --------------------------------------------------------------------------------


async def test_a_refused_key_is_reported_without_printing_it(gateway):
    wrong = "fgw_" + "W" * 43
    result = await run(gateway, "keys", "list", key=wrong)

    assert result.exit_code == 1
    assert result.stderr == "Error: Invalid API key (HTTP 401 invalid_api_key)\n"
    assert result.stdout == ""
    assert wrong not in result.output


async def test_no_key_says_how_to_give_one(gateway):
    result = await run(gateway, "health", key=None)

    assert result.exit_code == 1
    assert "authorization" not in {h.lower() for h in gateway.requests[0].headers}
    assert result.stderr == ("Error: Missing API key (HTTP 401 missing_api_key); "
                             "pass --api-key or set FERROGW_API_KEY\n")


async def test_a_read_only_key_cannot_change_anything(gateway):
    result = await run(gateway, "keys", "revoke", KEY_ID, key=READER_KEY)

    assert result.exit_code == 1
    assert result.stderr == "Error: This key lacks the admin scope (HTTP 403 insufficient_scope)\n"
    assert READER_KEY not in result.output


async def test_an_unknown_id_is_a_404_error(gateway):
    result = await run(gateway, "keys", "get", "no-such-key")

    assert result.exit_code == 1
    assert result.stderr == "Error: API key not found (HTTP 404 resource_not_found)\n"
    assert gateway.requests[0].path == "/admin/keys/no-such-key"


async def test_a_bad_field_names_its_param(fake_upstream):
    upstream = await fake_upstream({"POST /admin/keys": replying(lambda: api_error(
        400, "name must not be empty", "invalid_request_error", "invalid_value", "name"))})

    result = await run(upstream, "keys", "create", "--name", " ")

    assert result.exit_code == 1
    assert result.stderr == ("Error: name must not be empty "
                             "(HTTP 400 invalid_value, param name)\n")


async def test_an_echoed_key_is_masked_in_the_error(fake_upstream):
    async def echo(request):
        return api_error(401, f"key {request.headers['Authorization']} is unknown",
                         "authentication_error", "invalid_api_key")

    upstream = await fake_upstream({"GET /admin/keys": echo})
    result = await run(upstream, "keys", "list")

    assert result.stderr == "Error: key Bearer *** is unknown (HTTP 401 invalid_api_key)\n"


async def test_a_non_json_error_page_still_gives_the_status(fake_upstream):
    upstream = await fake_upstream({"GET /admin/health": replying(lambda: web.Response(
        status=502, text="<html>Bad Gateway</html>", content_type="text/html"))})

    result = await run(upstream, "health")

    assert result.exit_code == 1
    assert result.stderr == "Error: Bad Gateway (HTTP 502)\n"


async def test_a_success_that_is_not_json_is_an_error(fake_upstream):
    upstream = await fake_upstream({"GET /admin/health": replying(lambda: web.Response(
        text="<html>login</html>", content_type="text/html"))})

    result = await run(upstream, "health")

    assert result.exit_code == 1
    assert "is not JSON; check that --gateway-url points at a Ferro gateway" in result.stderr


async def test_connection_refused_names_the_url_and_the_option():
    url = f"http://127.0.0.1:{closed_port()}"
    result = await invoke("--gateway-url", url, "--api-key", ADMIN_KEY, "keys", "list")

    assert result.exit_code == 1
    assert result.stderr == (f"Error: cannot reach the gateway at {url}: connection refused. "
                             "Start it with `ferrogw serve`, or point the CLI at it with "
                             "--gateway-url or FERROGW_URL\n")
    assert ADMIN_KEY not in result.output


async def test_a_slow_gateway_hits_the_timeout(fake_upstream):
    async def slow(_request):
        await asyncio.sleep(5)
        return web.json_response({})

    upstream = await fake_upstream({"GET /admin/health": slow})
    result = await run(upstream, "--timeout", "0.2", "health")

    assert result.exit_code == 1
    assert result.stderr == (f"Error: the gateway at {upstream.url} gave no answer within "
                             "0.2 s; raise --timeout if it is just slow\n")


@pytest.mark.parametrize(("args", "says"), [
    (["keys", "create", "--name", "x", "--expires-in", "soon"], "expected seconds or a duration"),
    (["keys", "create", "--name", "x", "--expires-in", "0s"], "must be longer than zero"),
    (["keys", "create", "--name", "x", "--scope", "root"], "'root' is not one of"),
    (["logs", "list", "--since", "yesterday"], "expected an RFC 3339 time"),
    (["logs", "delete"], "Missing option '--before'"),
    (["keys", "update", KEY_ID], "Nothing to update"),
    (["keys", "update", KEY_ID, "--expires-in", "1h", "--clear-expiration"], "contradict"),
    (["keys", "update", KEY_ID, "--budget", "0", "--clear-budget"], "contradict"),
    (["keys", "usage", "--limit", "101"], "101 is not in the range"),
    (["config", "rollback", "0"], "0 is not in the range"),
])
async def test_bad_arguments_are_refused_before_any_request(gateway, args, says):
    result = await run(gateway, *args)

    assert result.exit_code == 2
    assert says in result.stderr
    assert gateway.requests == []


async def test_a_gateway_url_without_a_scheme_is_refused():
    result = await invoke("--gateway-url", "localhost:8080", "health")

    assert result.exit_code == 2
    assert "expected an http:// or https:// URL" in result.stderr


# --- environment ---------------------------------------------------------------------------


async def test_the_environment_supplies_url_key_and_output(gateway):
    result = await invoke("health", env={"FERROGW_URL": gateway.url + "/",
                                         "FERROGW_API_KEY": READER_KEY, "FERROGW_OUTPUT": "json"})

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "degraded"
    assert gateway.requests[0].headers["Authorization"] == f"Bearer {READER_KEY}"


async def test_options_win_over_the_environment(gateway):
    result = await invoke("--gateway-url", gateway.url, "--api-key", ADMIN_KEY, "-o", "table",
                          "health", env={"FERROGW_URL": "http://127.0.0.1:1",
                                         "FERROGW_API_KEY": READER_KEY, "FERROGW_OUTPUT": "json"})

    assert result.stdout.startswith("Status: degraded")
    assert gateway.requests[0].headers["Authorization"] == f"Bearer {ADMIN_KEY}"


async def test_help_shows_the_env_vars_but_never_their_values(gateway):
    result = await invoke("--help", env={"FERROGW_API_KEY": ADMIN_KEY})

    assert "FERROGW_API_KEY" in result.stdout
    assert "_FERROGW_CLI_COMPLETE=bash_source ferrogw-cli" in result.stdout
    assert ADMIN_KEY not in result.output


# --- shell completion ----------------------------------------------------------------------


def complete(words, env):
    """What bash completion offers for ``words`` (the last one being completed)."""
    root = click.Group("ferrogw-cli", commands=[admin])
    return invoke(cli=root, prog_name="ferrogw-cli", env={
        "_FERROGW_CLI_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1), **env})


async def test_key_ids_complete_from_the_gateway(gateway):
    env = {"FERROGW_URL": gateway.url, "FERROGW_API_KEY": ADMIN_KEY}

    every = await complete(["ferrogw-cli", "admin", "keys", "rotate", ""], env)
    some = await complete(["ferrogw-cli", "admin", "keys", "get", "7a"], env)

    assert every.stdout.split() == [f"plain,{KEY_ID}", f"plain,{OTHER_ID}"]
    assert some.stdout.split() == [f"plain,{OTHER_ID}"]
    assert gateway.requests[0].headers["Authorization"] == f"Bearer {ADMIN_KEY}"


async def test_key_id_completion_reads_the_group_options(gateway):
    words = ["ferrogw-cli", "admin", "--gateway-url", gateway.url, "--api-key", ADMIN_KEY,
             "keys", "delete", ""]
    result = await complete(words, {"FERROGW_URL": None, "FERROGW_API_KEY": None})

    assert result.stdout.split() == [f"plain,{KEY_ID}", f"plain,{OTHER_ID}"]


async def test_key_id_completion_is_silent_when_the_gateway_is_down():
    env = {"FERROGW_URL": f"http://127.0.0.1:{closed_port()}", "FERROGW_API_KEY": ADMIN_KEY}
    result = await complete(["ferrogw-cli", "admin", "keys", "get", ""], env)

    assert result.exit_code == 0
    assert result.output.split() == []


async def test_commands_complete_without_a_gateway():
    result = await complete(["ferrogw-cli", "admin", "ke"], {"FERROGW_URL": None})

    assert result.stdout.split() == ["plain,keys"]


# --- against the real gateway ----------------------------------------------------------------


def admin_routes_installed():
    try:
        importlib.metadata.distribution("ferro-admin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
async def real_gateway(ferro_server, stub_plugins):
    """The gateway app with the /admin routes, in-memory stores and a bootstrap admin key."""
    if not admin_routes_installed():
        pytest.skip("ferro-admin is not installed: no /admin routes to call")
    memory = {"backend": "memory"}
    config = {**stub_config(), "storage": {"keys": memory, "config": memory,
                                           "request_logs": memory}}
    server = await ferro_server(config, {"ADMIN_BOOTSTRAP_KEY": ADMIN_KEY}, stub_plugins)
    return SimpleNamespace(url=str(server.make_url("")).rstrip("/"))


async def test_a_key_lives_and_dies_through_the_cli(real_gateway):
    created = await run(real_gateway, "-o", "json", "keys", "create", "--name", "ci",
                        "--scope", "read_only", "--expires-in", "720h")
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert made["key"].startswith("fgw_")
    assert made["scopes"] == ["read_only"]

    listed = await run(real_gateway, "keys", "list")
    assert made["id"] in listed.stdout
    assert made["key"] not in listed.stdout

    reading = await run(real_gateway, "-o", "json", "keys", "get", made["id"], key=made["key"])
    assert json.loads(reading.stdout)["name"] == "ci"

    refused = await run(real_gateway, "keys", "revoke", made["id"], key=made["key"])
    assert refused.exit_code == 1
    assert "(HTTP 403 insufficient_scope)" in refused.stderr
    assert made["key"] not in refused.output

    rotated = await run(real_gateway, "-o", "json", "keys", "rotate", made["id"])
    new_secret = json.loads(rotated.stdout)["key"]
    assert new_secret != made["key"]
    old = await run(real_gateway, "health", key=made["key"])
    assert old.exit_code == 1
    assert "(HTTP 401 invalid_api_key)" in old.stderr

    renamed = await run(real_gateway, "-o", "json", "keys", "update", made["id"], "--name", "nightly")
    assert json.loads(renamed.stdout)["name"] == "nightly"

    assert (await run(real_gateway, "keys", "revoke", made["id"])).exit_code == 0
    gone = await run(real_gateway, "health", key=new_secret)
    assert gone.exit_code == 1

    assert (await run(real_gateway, "keys", "delete", made["id"], "--yes")).exit_code == 0
    missing = await run(real_gateway, "keys", "get", made["id"])
    assert missing.exit_code == 1
    assert "(HTTP 404 resource_not_found)" in missing.stderr


async def test_the_config_round_trips_through_the_cli(real_gateway, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("strategy:\n  mode: single\nproviders:\n  stub: {type: stub}\n"
                    "targets:\n  - virtual_key: stub\n")

    applied = await run(real_gateway, "config", "set", "--file", str(path))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.startswith("Config applied: now version ")

    history = await run(real_gateway, "-o", "json", "config", "history")
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout)["summary"]["total_versions"] >= 1

    invalid = tmp_path / "bad.yaml"
    invalid.write_text("strategy:\n  mode: no-such-strategy\n")
    refused = await run(real_gateway, "config", "set", "--file", str(invalid))
    assert refused.exit_code == 1
    assert "(HTTP 400 invalid_config" in refused.stderr


@pytest.mark.parametrize("command", [["health"], ["providers", "list"], ["dashboard"],
                                     ["config", "get"], ["keys", "usage"], ["logs", "list"],
                                     ["logs", "stats"]])
async def test_read_commands_work_against_the_gateway(real_gateway, command):
    for output in OUTPUTS:
        result = await run(real_gateway, "-o", output, *command)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip()
