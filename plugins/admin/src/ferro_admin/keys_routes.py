"""``/admin/keys``: create, list, change, rotate, revoke and delete stored API keys, and
their use.

Keys are managed through the app's :class:`ferro.KeyRing`, so a change made here (a
rotation, a revocation) takes effect on the very next request in this process. A secret is
in an answer only when it is made: on create and on rotate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from ferro import PIPELINE, SCOPES, InvalidRequestError, KeyRing

from ferro_admin import params
from ferro_admin.errors import NotFoundError
from ferro_admin.views import key_view

__all__ = ["create_key", "delete_key", "get_key", "key_usage", "list_keys", "revoke_key",
           "rotate_key", "update_key"]

_CREATE_FIELDS = ("name", "scopes", "expires_at", "expires_in", "models", "budget")
_UPDATE_FIELDS = ("name", "scopes", "expires_at", "clear_expiration", "models", "budget",
                  "clear_budget")
_SORTS = ("usage", "last_used")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ring(request: web.Request) -> KeyRing:
    ring = request.app[PIPELINE].keys
    assert ring is not None  # authorize() answered 501 without a key store
    return ring


def _key_id(request: web.Request) -> str:
    return request.match_info["key_id"]


def _missing(key_id: str) -> NotFoundError:
    return NotFoundError(f"no API key with id {key_id!r} (GET /admin/keys lists them)")


def _only(body: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            raise InvalidRequestError(f"unknown field {name!r} (known: {', '.join(known)})",
                                      param=name)


def _scopes(body: Mapping[str, Any]) -> list[str] | None:
    scopes = params.body_strings(body, "scopes")
    if scopes is None:
        return None
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        what = f"unknown scope(s) {', '.join(unknown)}" if unknown else "no scope given"
        raise InvalidRequestError(f"{what}: scopes must be a non-empty array of "
                                  f"{', '.join(SCOPES)}", param="scopes")
    return scopes


def _future(param: str, when: datetime) -> datetime:
    if when <= utcnow():
        raise InvalidRequestError(f"{param} is in the past ({params.rfc3339(when)}): give a "
                                  f"future time", param=param)
    return when


def _expiry(body: Mapping[str, Any]) -> datetime | None:
    at, seconds = params.body_time(body, "expires_at"), params.expires_in(body)
    if at is not None and seconds is not None:
        raise InvalidRequestError("give expires_at or expires_in, not both", param="expires_in")
    if seconds is not None:
        return utcnow() + timedelta(seconds=seconds)
    return _future("expires_at", at) if at is not None else None


async def list_keys(request: web.Request) -> web.Response:
    """Every key, masked, oldest first."""
    records = await _ring(request).storage.list_keys()
    return web.json_response([key_view(r) for r in records])


async def get_key(request: web.Request) -> web.Response:
    record = await _ring(request).storage.get_key(_key_id(request))
    if record is None:
        raise _missing(_key_id(request))
    return web.json_response(key_view(record))


async def key_usage(request: web.Request) -> web.Response:
    """Keys by use: the most used (or most recently used) first, filtered and paged; the
    summary counts every key the filters select."""
    query = request.query
    limit = params.query_int(query, "limit", 20, minimum=1, maximum=100)
    offset = params.query_int(query, "offset", 0, minimum=0)
    sort = params.query_choice(query, "sort", _SORTS, "usage")
    active = params.query_bool(query, "active")
    since = params.query_time(query, "since")
    now = utcnow()
    selected = [r for r in await _ring(request).storage.list_keys()
                if (active is None or (r.status(now) == "active") == active)
                and (since is None or (r.last_used_at is not None and r.last_used_at >= since))]
    if sort == "usage":
        selected.sort(key=lambda r: r.usage_count, reverse=True)
    else:
        selected.sort(key=lambda r: (r.last_used_at is not None, r.last_used_at or now),
                      reverse=True)
    page = selected[offset:offset + limit]
    return web.json_response({
        "data": [key_view(r) for r in page],
        "summary": {"total_keys": len(selected),
                    "active_keys": sum(r.status(now) == "active" for r in selected),
                    "total_usage": sum(r.usage_count for r in selected),
                    "returned_keys": len(page)},
        "filters": {"limit": limit, "offset": offset, "sort": sort, "active": active,
                    "since": params.rfc3339(since)},
    })


async def create_key(request: web.Request) -> web.Response:
    """A new key; the answer holds its full secret, the only time it is shown."""
    body = await params.json_object(request)
    _only(body, _CREATE_FIELDS)
    name = params.body_string(body, "name", required=True)
    assert name is not None
    record, secret = await _ring(request).create(
        name, _scopes(body) or ["inference"], expires_at=_expiry(body),
        models=params.body_strings(body, "models") or [],
        budget=params.body_budget(body, "budget"))
    return web.json_response(key_view(record, secret), status=201)


async def update_key(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    _only(body, _UPDATE_FIELDS)
    changes = _changes(body)
    ring = _ring(request)
    record = await ring.storage.get_key(_key_id(request))
    if record is None:
        raise _missing(_key_id(request))
    for field, value in changes.items():
        setattr(record, field, value)
    if not await ring.update(record):
        raise _missing(_key_id(request))
    return web.json_response(key_view(record))


def _changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a key a PUT body sets, checked before the key is read."""
    changes: dict[str, Any] = {}
    name = params.body_string(body, "name")
    if name is not None:
        changes["name"] = name
    scopes = _scopes(body)
    if scopes is not None:
        changes["scopes"] = scopes
    models = params.body_strings(body, "models")
    if models is not None:
        changes["models"] = models
    for value_field, clear_field, attribute, read in (
            ("expires_at", "clear_expiration", "expires_at", params.body_time),
            ("budget", "clear_budget", "budget", params.body_budget)):
        value, clear = read(body, value_field), params.body_bool(body, clear_field)
        if value is not None and clear:
            raise InvalidRequestError(f"give {value_field} or {clear_field}, not both",
                                      param=clear_field)
        if clear:
            changes[attribute] = None
        elif value is not None:
            changes[attribute] = _future(value_field, value) if attribute == "expires_at" \
                else value
    return changes


async def delete_key(request: web.Request) -> web.Response:
    if not await _ring(request).delete(_key_id(request)):
        raise _missing(_key_id(request))
    return web.Response(status=204)


async def revoke_key(request: web.Request) -> web.Response:
    """Revoke a key: it is refused from the next request on."""
    if await _ring(request).revoke(_key_id(request)) is None:
        raise _missing(_key_id(request))
    return web.json_response({"status": "revoked"})


async def rotate_key(request: web.Request) -> web.Response:
    """A new secret for a key (shown this once); the old secret is refused at once."""
    rotated = await _ring(request).rotate(_key_id(request))
    if rotated is None:
        raise _missing(_key_id(request))
    record, secret = rotated
    return web.json_response(key_view(record, secret))
