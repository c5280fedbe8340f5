"""Health: probes for orchestrators, and the providers' report.

- ``GET /health/live``: liveness, 200 ``{"status": "ok"}`` while the process serves HTTP.
  Public.
- ``GET /health/ready``: readiness, 200 ``{"status": "ready"}`` when the gateway can take
  traffic (it has started on a loaded config and is not shutting down), else a 503 in the
  error schema. Public unless ``server.public_readiness`` is false.
- ``GET /health``: each provider: its status, its circuit breaker's state (the worst of
  the targets using it: ``open``, then ``half_open``, then ``closed``; ``closed`` for a
  provider with no breaker), how many models it serves (those it is configured with or
  knows; with ``?deep=1``, its ``list_models()``, cached by the provider) and its
  operations. The overall status is ``degraded`` when a provider is
  unavailable or its breaker is open, ``no_providers`` (a 503) without any, else ``ok``.
  With ``?deep=1`` each upstream is checked too, else every provider counts as available.
  A deep result is reused for :data:`DEEP_TTL` seconds and each provider has at most one
  check in flight, however many callers ask, so polling it cannot flood an
  upstream. Behind the API key when keys are configured.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ferro.edge import ShuttingDownError
from ferro.errors import GatewayError
from ferro.resilience import BreakerState

if TYPE_CHECKING:
    from ferro.gateway import Gateway
    from ferro.pipeline import Pipeline
    from ferro.types import Provider, Target

__all__ = ["DEEP_TIMEOUT", "DEEP_TTL", "Health"]

#: Seconds a deep check's result is reused.
DEEP_TTL = 10.0
#: Seconds a deep check may take before the provider counts as unavailable.
DEEP_TIMEOUT = 10.0

#: How each breaker state is reported, worst last.
_BREAKER_NAMES = {BreakerState.CLOSED: "closed", BreakerState.HALF_OPEN: "half_open",
                  BreakerState.OPEN: "open"}
_WORST = list(_BREAKER_NAMES)


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
        deep = request.query.get("deep", "").lower() in ("1", "true", "yes")
        status, entries = await self.summary(deep)
        return web.json_response({"status": status, "providers": entries},
                                 status=200 if status != "no_providers" else 503)

    async def summary(self, deep: bool) -> tuple[str, list[dict[str, Any]]]:
        """The overall status and each provider's entry, as ``/health`` reports them."""
        gateway = self.pipeline.gateway
        names = list(gateway.providers)
        providers = [gateway.providers[n] for n in names]
        if deep:
            checks = self._checks_of(gateway)
            outcomes = await asyncio.gather(*(self._outcome(checks, name, provider)
                                              for name, provider in zip(names, providers,
                                                                        strict=True)))
        else:
            outcomes = [None] * len(providers)
        if deep:
            models = await asyncio.gather(*(_model_count(p) for p in providers))
        else:  # never an upstream call: the models it is configured with or knows
            models = [len(p.static_models()) for p in providers]
        entries = []
        for name, provider, outcome, count in zip(names, providers, outcomes, models,
                                                  strict=True):
            entry: dict[str, Any] = {"name": name, "status": "available", "models": count,
                                     "breaker": _breaker(gateway.targets, provider),
                                     "operations": sorted(provider.operations)}
            if outcome is not None:
                entry["status"] = "unavailable"
                entry["message"] = (outcome.message if isinstance(outcome, GatewayError)
                                    else f"{type(outcome).__name__}: {outcome}")
            entries.append(entry)
        if not entries:
            status = "no_providers"
        elif any(e["status"] != "available" or e["breaker"] == "open" for e in entries):
            status = "degraded"
        else:
            status = "ok"
        return status, entries

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


def _breaker(targets: list[Target], provider: Provider) -> str:
    """The worst state of the breakers of the targets that use ``provider``."""
    states = [t.breaker.state for t in targets
              if t.provider is provider and t.breaker is not None]
    return _BREAKER_NAMES[max(states, key=_WORST.index, default=BreakerState.CLOSED)]


async def _model_count(provider: Provider) -> int:
    """How many models ``provider`` serves; its configured or default ones when it cannot
    say (a report of health does not fail with one provider)."""
    try:
        return len(await provider.list_models())
    except Exception:
        return len(provider.static_models())


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
