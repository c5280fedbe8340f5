"""Health: probes for orchestrators, and the providers' report.

- ``GET /health/live``: liveness, 200 ``{"status": "ok"}`` while the process serves HTTP.
  Public.
- ``GET /health/ready``: readiness, 200 ``{"status": "ready"}`` when the gateway can take
  traffic (it has started on a loaded config and is not shutting down), else a 503 in the
  error schema. Public unless ``server.public_readiness`` is false.
- ``GET /health``: each provider, its models and operations; with ``?deep=1`` each upstream
  is checked too. A deep result is reused for :data:`DEEP_TTL` seconds and each provider
  has at most one check in flight, however many callers ask, so polling it cannot flood an
  upstream. Behind the API key when keys are configured.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ferro.edge import ShuttingDownError
from ferro.errors import GatewayError

if TYPE_CHECKING:
    from ferro.gateway import Gateway
    from ferro.pipeline import Pipeline
    from ferro.types import Provider

__all__ = ["DEEP_TIMEOUT", "DEEP_TTL", "Health"]

#: Seconds a deep check's result is reused.
DEEP_TTL = 10.0
#: Seconds a deep check may take before the provider counts as unavailable.
DEEP_TIMEOUT = 10.0


class _Check:
    """One provider's latest deep check: its outcome (None: healthy) until ``expires``, or
    the check in flight."""

    __slots__ = ("expires", "outcome", "running")

    def __init__(self) -> None:
        self.expires = 0.0
        self.outcome: BaseException | None = None
        self.running: asyncio.Future[BaseException | None] | None = None


class Health:
    """The health routes of one app (their handlers are its methods)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        #: Set when the gateway begins to shut down: readiness fails from then on.
        self.draining = False
        self._gateway: Gateway | None = None
        self._checks: dict[str, _Check] = {}

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        if self.draining:
            raise ShuttingDownError("the gateway is shutting down")
        return web.json_response({"status": "ready"})

    async def report(self, request: web.Request) -> web.Response:
        gateway = self.pipeline.gateway
        deep = request.query.get("deep", "").lower() in ("1", "true", "yes")
        names = list(gateway.providers)
        providers = [gateway.providers[n] for n in names]
        if deep:
            checks = self._checks_of(gateway)
            outcomes = await asyncio.gather(*(self._outcome(checks, name, provider)
                                              for name, provider in zip(names, providers,
                                                                        strict=True)))
        else:
            outcomes = [None] * len(providers)
        entries = []
        for name, provider, outcome in zip(names, providers, outcomes, strict=True):
            entry: dict[str, Any] = {"name": name, "status": "available",
                                     "models": len(provider.static_models()),
                                     "operations": sorted(provider.operations)}
            if outcome is not None:
                entry["status"] = "unavailable"
                entry["message"] = (outcome.message if isinstance(outcome, GatewayError)
                                    else f"{type(outcome).__name__}: {outcome}")
            entries.append(entry)
        if not entries:
            status = "no_providers"
        elif any(e["status"] != "available" for e in entries):
            status = "degraded"
        else:
            status = "ok"
        return web.json_response({"status": status, "providers": entries},
                                 status=200 if status != "no_providers" else 503)

    def _checks_of(self, gateway: Gateway) -> dict[str, _Check]:
        """The deep checks of ``gateway`` (a reloaded config starts afresh)."""
        if gateway is not self._gateway:
            self._gateway, self._checks = gateway, {}
        return self._checks

    async def _outcome(self, checks: dict[str, _Check], name: str,
                       provider: Provider) -> BaseException | None:
        check = checks.setdefault(name, _Check())
        if check.running is None:
            if asyncio.get_running_loop().time() < check.expires:
                return check.outcome
            check.running = asyncio.ensure_future(_run_check(check, provider))
        # shielded: a caller that goes away does not cancel the check the others wait for
        return await asyncio.shield(check.running)


async def _run_check(check: _Check, provider: Provider) -> BaseException | None:
    try:
        await asyncio.wait_for(provider.check_health(), DEEP_TIMEOUT)
        outcome: BaseException | None = None
    except Exception as exc:
        outcome = exc
    finally:
        check.running = None
    check.outcome = outcome
    check.expires = asyncio.get_running_loop().time() + DEEP_TTL
    return outcome
