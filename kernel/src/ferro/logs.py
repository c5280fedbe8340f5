"""Structured logging: one JSON object per line (``LOG_FORMAT=text`` for humans), with
secrets redacted from every message."""

from __future__ import annotations

import logging
import re
import sys
import time

import orjson

__all__ = ["redact", "setup_logging"]

_SECRET = re.compile(
    r"(?i)((?:authorization|x-api-key|api-key|api_key)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
    r"([^\s\"',}]+)|([?&]key=)([^&\s\"']+)"
)


def redact(text: str) -> str:
    """Hide values of authorization headers, api-key fields and ``key=`` query strings."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(3)) + "[REDACTED]", text)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in getattr(record, "fields", {}).items():
            out[key] = value
        if record.exc_info:
            out["error"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "text":
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": "WARNING"}.get(level.lower(), level.upper()))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
