"""Azure OpenAI's deployment URL and api-version rules."""

import pytest
from ferro_provider_azure_openai._wire import (
    deployment_url,
    is_prompt_filter_chunk,
    supports_stream_usage,
)


def test_the_deployment_url_has_the_path_and_the_api_version():
    chat = "/chat/completions"
    assert deployment_url("https://r.openai.azure.com", "gpt-4o-prod", chat, "2024-10-21") == (
        "https://r.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions"
        "?api-version=2024-10-21")
    assert deployment_url("https://r.openai.azure.com", "a b/c", chat,
                          "2025-01-01-preview") == (
        "https://r.openai.azure.com/openai/deployments/a%20b%2Fc/chat/completions"
        "?api-version=2025-01-01-preview")


@pytest.mark.parametrize(("version", "supported"), [
    ("2024-02-01", False),
    ("2024-06-01", False),
    ("2024-08-01-preview", False),
    ("2024-09-01-preview", True),
    ("2024-10-21", True),
    ("2025-04-01-preview", True),
    ("preview", True),
])
def test_stream_usage_by_api_version(version, supported):
    assert supports_stream_usage(version) is supported


def test_prompt_filter_preamble():
    preamble = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    assert is_prompt_filter_chunk(preamble)
    assert not is_prompt_filter_chunk({**preamble, "choices": [{"index": 0, "delta": {}}]})
    assert not is_prompt_filter_chunk({**preamble, "usage": {"prompt_tokens": 1}})
    assert not is_prompt_filter_chunk({"choices": [], "usage": {"prompt_tokens": 1}})
