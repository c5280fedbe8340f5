"""The signature on every POST, and the check a receiver makes of it.

Each POST carries ``X-Ferro-Timestamp: <unix seconds>`` and ``X-Ferro-Signature:
sha256=<hex>``, the hex HMAC-SHA256, keyed with the endpoint's secret, of the bytes
``<timestamp>.<body>``: the timestamp as sent, a full stop, then the raw body. A receiver
recomputes it over the body exactly as received, compares in constant time, and refuses a
timestamp too far from its own clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Ferro-Signature"
TIMESTAMP_HEADER = "X-Ferro-Timestamp"
EVENT_ID_HEADER = "X-Ferro-Event-Id"
EVENT_TYPE_HEADER = "X-Ferro-Event-Type"

#: Seconds a timestamp may be from the receiver's clock, either way, by default.
DEFAULT_TOLERANCE = 300.0

_SCHEME = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Ferro-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                     *, tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> bool:
    """Whether a received POST is genuine and fresh: ``signature`` (the
    ``X-Ferro-Signature`` header) signs ``body`` (the raw bytes received) at ``timestamp``
    (the ``X-Ferro-Timestamp`` header) with ``secret``, and ``timestamp`` is within
    ``tolerance`` seconds of ``now`` (default: this machine's clock). A missing or malformed
    header is simply not genuine."""
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).encode()
    return hmac.compare_digest(expected, signature.strip().encode())
