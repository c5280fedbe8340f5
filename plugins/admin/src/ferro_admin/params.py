"""Reading query strings and JSON bodies, with a 400 that names the parameter at fault.

Every function raises :class:`ferro.InvalidRequestError` with ``param`` set, so a caller
sees which field to fix and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from ferro import Duration, InvalidRequestError

__all__ = ["body_bool", "body_budget", "body_string", "body_strings", "body_time",
           "expires_in", "json_object", "query_bool", "query_choice", "query_int",
           "query_string", "query_time", "rfc3339", "time_of"]


def bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


# --- times ---------------------------------------------------------------------------------


def time_of(param: str, text: str) -> datetime:
    """An RFC 3339 time (``2025-01-31T12:00:00Z``, or with an offset), as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or "T" not in text.upper():
        raise bad(param, f"{param} must be an RFC 3339 time with a zone, such as "
                         f"2025-01-31T12:00:00Z (got {text!r})")
    return value.astimezone(UTC)


def rfc3339(value: datetime | None) -> str | None:
    """``value`` as RFC 3339 UTC (``...Z``), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- query strings -------------------------------------------------------------------------


def query_int(query: Mapping[str, str], name: str, default: int, *, minimum: int,
              maximum: int | None = None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad(name, f"{name} must be an integer (got {text!r})") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise bad(name, f"{name} must be at least {minimum}{upper} (got {value})")
    return value


def query_bool(query: Mapping[str, str], name: str) -> bool | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad(name, f"{name} must be true or false (got {text!r})")


def query_choice(query: Mapping[str, str], name: str, choices: tuple[str, ...],
                 default: str) -> str:
    text = query.get(name) or default
    if text not in choices:
        raise bad(name, f"{name} must be one of {', '.join(choices)} (got {text!r})")
    return text


def query_time(query: Mapping[str, str], name: str, *, required: bool = False
               ) -> datetime | None:
    text = query.get(name)
    if text is None or text == "":
        if required:
            raise bad(name, f"{name} is required: an RFC 3339 time such as "
                            f"2025-01-31T12:00:00Z")
        return None
    if "T" in text.upper() and " " in text.strip():  # an offset's "+" sent unencoded
        text = text.strip().replace(" ", "+")
    return time_of(name, text)


def query_string(query: Mapping[str, str], name: str) -> str:
    return query.get(name, "").strip()


# --- JSON bodies ---------------------------------------------------------------------------


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body: a JSON object."""
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError as exc:
        raise bad("body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = "empty" if body is None else f"a JSON {_json_type(body)}"
        raise bad("body", f"the body must be a JSON object (got {kind})")
    return body


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def body_string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad(name, f"{name} is required: a non-empty string")
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(name, f"{name} must be a non-empty string (got {_describe(value)})")
    return value.strip()


def body_strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise bad(name, f"{name} must be an array of non-empty strings (got {_describe(value)})")
    return [v.strip() for v in value]


def body_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad(name, f"{name} must be true or false (got {_describe(value)})")
    return value


def body_budget(body: Mapping[str, Any], name: str) -> float | None:
    """A spend limit in US dollars: a number, zero or more."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(name, f"{name} must be a number of US dollars (got {_describe(value)})")
    if value < 0 or value != value or value == float("inf"):
        raise bad(name, f"{name} must be zero or more US dollars (got {value})")
    return float(value)


def body_time(body: Mapping[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(name, f"{name} must be an RFC 3339 time string (got {_describe(value)})")
    return time_of(name, value)


def expires_in(body: Mapping[str, Any], name: str = "expires_in") -> float | None:
    """Seconds from now: a number, or a duration string such as ``"720h"`` or ``"30m"``."""
    value = body.get(name)
    if value is None:
        return None
    try:
        seconds = float(Duration.parse(value))
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0:
        raise bad(name, f"{name} must be a positive number of seconds or a duration such "
                        f"as \"720h\" or \"30m\" (got {_describe(value)})")
    return seconds


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return f"{_json_type(value)} {text if len(text) <= 60 else text[:57] + '...'}"
