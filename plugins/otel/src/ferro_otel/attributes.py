"""Span names and attributes, after the OpenTelemetry GenAI semantic conventions: pure
functions of a completed exchange and its calls.

Besides the ``gen_ai.*``, ``server.*``, ``http.*`` and ``error.type`` attributes, spans carry
the gateway's own under ``ferro.``: the request id, the caller's key id (never the key), the
request's cost, and the target's name as configured.
"""

from __future__ import annotations

from typing import Any

from ferro import Call, Exchange, Usage

from ferro_otel.targets import TargetInfo

__all__ = ["OPERATION_NAMES", "call_attributes", "operation_name", "request_attributes",
           "span_name", "usage_attributes"]

#: ``gen_ai.operation.name`` of the gateway's operations (any other is named as it is).
OPERATION_NAMES = {"chat": "chat", "embeddings": "embeddings", "completions": "text_completion"}


def operation_name(operation: str) -> str:
    return OPERATION_NAMES.get(operation, operation)


def span_name(operation: str, model: str) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, or the operation alone when no
    model is known."""
    name = operation_name(operation)
    return f"{name} {model}" if model else name


def usage_attributes(usage: Usage) -> dict[str, int]:
    """The token counts an answer reported (the cache and reasoning counts where there are
    any)."""
    out = {"gen_ai.usage.input_tokens": usage.prompt_tokens,
           "gen_ai.usage.output_tokens": usage.completion_tokens}
    for key, count in (("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens),
                       ("gen_ai.usage.cache_creation.input_tokens", usage.cache_creation_tokens),
                       ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens)):
        if count:
            out[key] = count
    return out


def request_attributes(exchange: Exchange, answering: TargetInfo | None) -> dict[str, Any]:
    """The request span's attributes; ``answering``: the target that answered, or failed
    last (None: no target was called, or it is no longer configured)."""
    out: dict[str, Any] = {
        "gen_ai.operation.name": operation_name(exchange.operation),
        "http.response.status_code": exchange.status,
        "ferro.request.id": exchange.request_id,
    }
    if exchange.model:
        out["gen_ai.request.model"] = exchange.model
    if answering is not None:
        out["gen_ai.provider.name"] = answering.attributes["gen_ai.provider.name"]
    if exchange.provider:
        out["ferro.target"] = exchange.provider
    if exchange.stream:
        out["gen_ai.request.stream"] = True
        if exchange.ttfb is not None:
            out["gen_ai.response.time_to_first_chunk"] = exchange.ttfb
    if exchange.error is not None:
        out["error.type"] = exchange.error.code
    else:
        if exchange.upstream_model:
            out["gen_ai.response.model"] = exchange.upstream_model
        out.update(usage_attributes(exchange.usage))
    if exchange.identity is not None:
        out["ferro.key.id"] = exchange.identity.key_id
    if exchange.cost is not None:
        out["ferro.cost.usd"] = exchange.cost
    return out


def call_attributes(exchange: Exchange, call: Call, target: TargetInfo | None,
                    answered: bool, error: str | None) -> dict[str, Any]:
    """An upstream call's span attributes: ``answered`` when it gave the exchange its
    answer (its usage is the answer's), ``error`` the code it failed with, if any."""
    out: dict[str, Any] = {"gen_ai.operation.name": operation_name(exchange.operation),
                           "ferro.target": call.target}
    if target is not None:
        out.update(target.attributes)
        model = target.target.upstream_model(exchange.model) if exchange.model else ""
        if model:
            out["gen_ai.request.model"] = model
    if exchange.stream:
        out["gen_ai.request.stream"] = True
        if call.error is None:  # its first chunk arrived
            out["gen_ai.response.time_to_first_chunk"] = call.duration
    if error is not None:
        out["error.type"] = error
    elif answered:
        out.update(usage_attributes(exchange.usage))
    return out
