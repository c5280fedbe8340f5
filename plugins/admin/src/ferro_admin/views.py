"""The JSON forms of stored records, as the management API answers them."""

from __future__ import annotations

from typing import Any

from ferro import ConfigVersion, KeyRecord, LogRow

from ferro_admin.params import rfc3339

__all__ = ["history_entry", "key_view", "log_view"]


def key_view(record: KeyRecord, secret: str | None = None) -> dict[str, Any]:
    """A key, its secret masked to the display form; ``secret`` (on create and rotate
    only) is shown in full instead."""
    status = record.status()
    return {
        "id": record.id,
        "name": record.name,
        "key": secret if secret is not None else record.display,
        "scopes": list(record.scopes),
        "status": status,
        "active": status == "active",
        "created_at": rfc3339(record.created_at),
        "expires_at": rfc3339(record.expires_at),
        "revoked_at": rfc3339(record.revoked_at),
        "rotated_at": rfc3339(record.rotated_at),
        "last_used_at": rfc3339(record.last_used_at),
        "usage_count": record.usage_count,
        "models": list(record.models),
        "budget": record.budget,
        "spent": record.spent,
    }


def history_entry(entry: ConfigVersion) -> dict[str, Any]:
    created = rfc3339(entry.created_at)
    out: dict[str, Any] = {"version": entry.version, "created_at": created,
                           "updated_at": created, "action": entry.action,
                           "actor": entry.actor, "config": entry.config}
    if entry.rolled_back_from is not None:
        out["rolled_back_from"] = entry.rolled_back_from
    return out


def log_view(row: LogRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": rfc3339(row.created_at),
        "request_id": row.request_id,
        "trace_id": row.trace_id,
        "key_id": row.key_id,
        "operation": row.operation,
        "provider": row.provider,
        "model": row.model,
        "status": row.status,
        "stage": row.stage,
        "latency_ms": row.latency_ms,
        "ttfb_ms": row.ttfb_ms,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
        "cost": row.cost,
        "attempts": row.attempts,
        "stream": row.stream,
        "error_type": row.error_type,
        "error_message": row.error_message,
    }
