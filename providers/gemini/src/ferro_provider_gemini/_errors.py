"""Gemini's error body, ``{"error": {"code", "message", "status", "details"}}``, read for
what the HTTP status alone does not say (pure functions).

Reference: https://ai.google.dev/gemini-api/docs/troubleshooting (error codes) and
https://cloud.google.com/apis/design/errors (google.rpc.Status, ErrorInfo, RetryInfo).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

__all__ = ["ErrorFacts", "error_facts", "error_of"]

#: google.rpc status name -> the HTTP status OpenAI clients expect.
_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
#: ErrorInfo reasons of a bad or missing key: Gemini answers them with 400 INVALID_ARGUMENT,
#: but they are a refusal of the gateway's key (a 401, which the kernel answers as a 502
#: ``upstream_auth_error``; another target may have a good key).
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_NOT_FOUND"})
#: How Gemini words a prompt over the model's input limit.
_CONTEXT_MARKERS = ("exceeds the maximum number of tokens", "input token count")


class ErrorFacts:
    __slots__ = ("code", "retry_after", "status")

    def __init__(self, status: int, code: str | None, retry_after: str | None) -> None:
        self.status = status
        self.code = code
        self.retry_after = retry_after


def error_of(payload: Any) -> dict[str, Any] | None:
    """The ``error`` object of a Gemini error body (also when wrapped in a JSON array)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"]
    return None


def error_facts(status: int, payload: Any) -> ErrorFacts:
    """The status to answer with, an error code when Gemini's body says more than the
    status does, and a Retry-After value from ``RetryInfo.retryDelay``. ``status`` is the
    HTTP status, or 200 for an error event inside a stream."""
    error = error_of(payload)
    if error is None:
        return ErrorFacts(status, None, None)
    name = error.get("status")
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reasons = {d.get("reason") for d in details}
    code = None
    if reasons & _AUTH_REASONS:
        status = 401
    elif status < 400:  # an error event inside a 200 stream: the body says what it is
        body_code = error.get("code")
        status = body_code if isinstance(body_code, int) and body_code >= 400 else (
            _STATUS.get(name, 502))
    message = str(error.get("message") or "").lower()
    if status == 400 and any(m in message for m in _CONTEXT_MARKERS):
        code = "context_length_exceeded"
    retry_after = None
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                retry_after = str(max(1, math.ceil(float(delay[:-1]))))
    return ErrorFacts(status, code, retry_after)
