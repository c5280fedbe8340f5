"""Ollama's /v1 field support (docs.ollama.com/api/openai-compatibility) and OLLAMA_HOST."""

import pytest
from ferro import InvalidRequestError
from ferro_provider_ollama._wire import host_url, model_names, ollama_body

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
BASE = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("host", "url"), [
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("localhost", "http://localhost:11434"),
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("[::1]", "http://[::1]:11434"),
    ("http://gpu-box:11434", "http://gpu-box:11434"),
    ("https://ollama.example.com", "https://ollama.example.com"),
    ("http://localhost:11434/v1/", "http://localhost:11434"),
    ("http://proxy.local/ollama", "http://proxy.local/ollama"),
])
def test_ollama_host_is_read_like_ollamas_client(host, url):
    assert host_url(host) == url


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {}),
    ({"n": 1, "user": "u-1", "seed": 3, "stream_options": {"include_usage": True}},
     {"n": 1, "user": "u-1", "seed": 3, "stream_options": {"include_usage": True}}),
    ({"tools": TOOLS, "tool_choice": "auto"}, {"tools": TOOLS}),
    ({"tools": TOOLS, "tool_choice": "none"}, {}),
    ({"tools": TOOLS}, {"tools": TOOLS}),
    ({"max_completion_tokens": 40}, {"max_tokens": 40}),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
])
def test_request_translation(extra, sent):
    body = {**BASE, **extra}
    before = dict(body)
    assert ollama_body(body) == {**BASE, **sent}
    assert body == before


@pytest.mark.parametrize(("extra", "named"), [
    ({"n": 2}, "n=2"),
    ({"logit_bias": {"1": -100}}, "logit_bias"),
    ({"tools": TOOLS, "tool_choice": "required"}, "tool_choice 'required'"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     "tool_choice"),
])
def test_refused(extra, named):
    with pytest.raises(InvalidRequestError) as info:
        ollama_body({**BASE, **extra})
    assert named in info.value.message and "ollama" in info.value.message


def test_model_names_from_api_tags():
    tags = {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1},
                       {"name": "qwen3:8b", "model": "qwen3:8b"}, {"size": 3}]}
    assert model_names(tags) == ["llama3.2:latest", "qwen3:8b"]
    assert model_names({"models": []}) == []
    assert model_names([]) == []
