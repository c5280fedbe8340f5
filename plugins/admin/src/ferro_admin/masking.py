"""Secrets taken out of a config tree before it is shown: provider API keys, the keys of
``server.api_keys`` and passwords in storage DSNs. A value that only names an environment
variable (``${OPENAI_API_KEY}``) holds no secret and is shown as written."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "masked_config"]

MASK = "***"
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}")


def masked_config(tree: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of config ``tree`` (its JSON form) with its secrets masked."""
    if tree is None:
        return None
    out = copy.deepcopy(tree)
    providers = out.get("providers")
    if isinstance(providers, dict):
        for settings in providers.values():
            if isinstance(settings, dict) and settings.get("api_key"):
                settings["api_key"] = _masked(settings["api_key"])
    server = out.get("server")
    if isinstance(server, dict) and isinstance(server.get("api_keys"), list):
        server["api_keys"] = [_masked(k) for k in server["api_keys"]]
    storage = out.get("storage")
    if isinstance(storage, dict):
        for store in storage.values():
            if isinstance(store, dict) and isinstance(store.get("dsn"), str):
                store["dsn"] = _without_password(store["dsn"])
    return out


def _masked(value: Any) -> Any:
    if isinstance(value, str) and (value == MASK or _ENV_REFERENCE.fullmatch(value)):
        return value
    return MASK


def _without_password(dsn: str) -> str:
    if _ENV_REFERENCE.fullmatch(dsn):
        return dsn
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return dsn
    if not password:
        return dsn
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))
