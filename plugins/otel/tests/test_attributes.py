"""Span names, attributes and statuses, after the GenAI semantic conventions."""

import pytest
from ferro import Identity, InvalidRequestError, RejectedError, Target, UpstreamError, Usage
from ferro.testing import StubProvider
from ferro_otel.targets import Targets, provider_name
from opentelemetry.trace import StatusCode


def test_the_request_span(recorder, make_exchange):
    exchange = make_exchange(identity=Identity("key-7", "ci"))
    request, _ = recorder().spans(exchange)
    assert request.name == "chat gpt-4o"
    assert dict(request.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 5,
        "http.response.status_code": 200,
        "ferro.request.id": "req-1",
        "ferro.target": "backup",
        "ferro.key.id": "key-7",
        "ferro.cost.usd": 0.00003,
    }
    assert request.status.status_code is StatusCode.UNSET


def test_the_call_spans(recorder, make_exchange):
    _, (primary, backup) = recorder().spans(make_exchange())
    assert primary.name == "chat gpt-4o-2024-08-06"  # the model its model_map sends
    assert dict(primary.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "azure.ai.openai",
        "gen_ai.request.model": "gpt-4o-2024-08-06",
        "server.address": "primary.example.test",
        "server.port": 443,
        "error.type": "upstream_unavailable",
        "ferro.target": "primary",
    }
    assert primary.status.status_code is StatusCode.ERROR
    assert primary.status.description == "upstream_unavailable (status 503)"
    assert dict(backup.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "127.0.0.1",
        "server.port": 8399,
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 5,
        "ferro.target": "backup",
    }
    assert backup.status.status_code is StatusCode.UNSET


def test_a_failed_request_is_an_error_with_its_message(recorder, make_exchange):
    error = UpstreamError("backup: the server had an error", status=500, provider="backup")
    failed = make_exchange(status=500, error=error, usage=Usage(), cost=None,
                           calls=make_exchange().calls[:1])
    request, (call,) = recorder().spans(failed)
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description == "backup: the server had an error"
    assert request.attributes["error.type"] == "upstream_error"
    assert request.attributes["http.response.status_code"] == 500
    assert "gen_ai.usage.input_tokens" not in request.attributes
    assert "gen_ai.response.model" not in request.attributes
    assert call.status.status_code is StatusCode.ERROR


def test_a_refused_request_names_its_error_but_is_no_server_error(recorder, make_exchange):
    blocked = RejectedError("blocked by the word filter", code="content_blocked")
    refused = make_exchange(status=400, calls=[], provider="", upstream_model="", cost=None,
                            usage=Usage(), model="", error=blocked)
    request, _ = recorder().spans(refused)
    assert request.name == "chat"
    assert request.status.status_code is StatusCode.UNSET  # a client's error, as HTTP has it
    assert request.attributes["error.type"] == "content_blocked"
    assert request.attributes["http.response.status_code"] == 400
    assert "gen_ai.provider.name" not in request.attributes
    assert "ferro.target" not in request.attributes
    assert "ferro.cost.usd" not in request.attributes


def test_a_stream_that_broke_off_marks_the_call_that_answered(recorder, make_exchange):
    broke = UpstreamError("backup closed the connection before its answer was complete",
                          provider="backup", code="upstream_disconnected")
    request, (_, backup) = recorder().spans(make_exchange(
        stream=True, status=502, error=broke, usage=Usage()))
    assert backup.status.status_code is StatusCode.ERROR
    assert backup.status.description == broke.message
    assert backup.attributes["error.type"] == "upstream_disconnected"
    assert backup.attributes["gen_ai.response.time_to_first_chunk"] == 0.5
    assert "gen_ai.usage.input_tokens" not in backup.attributes
    assert request.attributes["error.type"] == "upstream_disconnected"


def test_a_failure_of_the_gateways_own_leaves_the_call_that_answered_alone(
        recorder, make_exchange):
    refused = InvalidRequestError("the answer was refused by an output guardrail")
    _, (_, backup) = recorder().spans(make_exchange(status=400, error=refused))
    assert backup.status.status_code is StatusCode.UNSET
    assert "error.type" not in backup.attributes


@pytest.mark.parametrize(("operation", "name"), [
    ("chat", "chat"), ("embeddings", "embeddings"), ("completions", "text_completion")])
def test_operations_are_named_as_the_conventions_name_them(recorder, make_exchange,
                                                            operation, name):
    request, calls = recorder().spans(make_exchange(operation=operation))
    assert request.name == f"{name} gpt-4o"
    assert {s.attributes["gen_ai.operation.name"] for s in [request, *calls]} == {name}


def test_cache_and_reasoning_tokens_are_reported_where_there_are_any(recorder, make_exchange):
    usage = Usage(prompt_tokens=100, completion_tokens=40, cached_tokens=60,
                  cache_creation_tokens=30, reasoning_tokens=25)
    request, (_, backup) = recorder().spans(make_exchange(usage=usage))
    for span in (request, backup):
        assert span.attributes["gen_ai.usage.input_tokens"] == 100
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 60
        assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 30
        assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 25


def test_a_target_no_longer_configured_is_named_only(recorder, make_exchange):
    request, (primary, backup) = recorder(targets=[]).spans(make_exchange())
    assert primary.name == "chat"
    assert {k: v for k, v in backup.attributes.items() if not k.startswith("gen_ai.usage")} \
        == {"gen_ai.operation.name": "chat", "ferro.target": "backup"}
    assert "gen_ai.provider.name" not in request.attributes


@pytest.mark.parametrize(("kind", "name"), [
    ("openai", "openai"), ("anthropic", "anthropic"), ("azure-openai", "azure.ai.openai"),
    ("gemini", "gcp.gemini"), ("mistral", "mistral_ai"), ("cohere", "cohere"),
    ("deepseek", "deepseek"), ("groq", "groq"), ("ollama", "ollama")])
def test_provider_types_are_named_as_the_conventions_name_them(kind, name):
    assert provider_name(kind) == name


def test_targets_are_read_again_after_a_reload():
    served = [Target("a", StubProvider("a"), kind="openai")]
    targets = Targets(lambda: served)
    assert targets.get("a").attributes == {"gen_ai.provider.name": "openai"}
    served = [Target("a", StubProvider("a"), kind="anthropic")]
    assert targets.get("a").attributes == {"gen_ai.provider.name": "anthropic"}
    assert targets.get("b") is None
