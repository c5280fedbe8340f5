import pytest
from ferro import ConfigError
from ferro.testing import installed_plugins


def test_the_gateway_discovers_and_lists_the_plugin():
    rows = installed_plugins()  # what `ferrogw-cli plugins --json` prints
    assert rows["example"]["distribution"] == "ferro-plugin-example"
    assert rows["example"]["registers"] == {"plugins": ["system-prompt"]}
    assert rows["example"]["hooks"] == ["register_plugins"]


@pytest.mark.parametrize(("replace", "expected_roles"), [
    (False, ["system", "system", "user"]),
    (True, ["system", "user"]),
])
async def test_the_system_prompt_reaches_the_provider(ferro_client, fake_upstream, replace,
                                                      expected_roles):
    upstream = await fake_upstream({"POST /v1/chat/completions": {
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "oui"},
                     "finish_reason": "stop"}]}})
    client = await ferro_client({
        "providers": {"openai": {"api_key": "k", "base_url": upstream.url + "/v1"}},
        "targets": [{"virtual_key": "openai"}],
        "plugins": [{"name": "system-prompt", "stage": "before_request",
                     "config": {"text": "Answer in French.", "replace": replace}}]})
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    assert resp.status == 200
    sent = upstream.requests[0].json()["messages"]
    assert [m["role"] for m in sent] == expected_roles
    assert sent[0] == {"role": "system", "content": "Answer in French."}


def test_a_bad_option_is_a_located_config_error(ferro_app):
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.config\.text"):
        ferro_app({"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
                   "plugins": [{"name": "system-prompt", "config": {"text": ""}}]})
