"""Structured logging: one JSON object per line (``LOG_FORMAT=text`` for humans), with
secrets redacted from every line.

The formatters :func:`setup_logging` installs scrub each record's final line (message,
exception text, structured fields; see :mod:`ferro.redaction`) of the provider credentials
of every config applied (start-up and every reload), and of anything shaped like a
credential. Every logger's records pass them, the gateway's and its libraries'.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from ferro.redaction import scrub as redact

__all__ = ["redact", "setup_logging"]


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(out, default=str).decode())


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
