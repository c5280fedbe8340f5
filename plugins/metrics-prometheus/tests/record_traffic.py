"""One gateway process's traffic, for the multiprocess tests: run with
``PROMETHEUS_MULTIPROC_DIR`` set, it counts ``REQUESTS`` answered exchanges of target ``a``
for model ``m`` (``TOKENS`` prompt tokens each) and sets ``a``'s breaker to ``STATE``,
then exits. Arguments: REQUESTS TOKENS STATE."""

import sys

from ferro import BreakerState, Exchange, Usage
from ferro_metrics_prometheus import GatewayMetrics
from prometheus_client import CollectorRegistry


def main(requests: int, tokens: int, state: int) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    for _ in range(requests):
        metrics.exchange_completed(Exchange(
            request_id="r", operation="chat", model="m", provider="a", stream=False,
            status=200, started=0.0, duration=0.1, ttfb=0.1, targets=["a"], attempts=1,
            usage=Usage(prompt_tokens=tokens)))
    metrics.breaker_state_changed("a", BreakerState(state))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
