#!/usr/bin/env python3
"""``ferrogw`` with one ``exchange_completed`` listener that reads only each exchange's
status and usage, as a metrics plugin does: ``run.py --with-listener`` serves the gateway
through this, to show what such a listener costs (it must not make the relay parse every
stream frame). Arguments are ``ferrogw``'s."""

from __future__ import annotations

from ferro import Exchange, hookimpl, make_plugin_manager
from ferro.cli import build_cli


class UsageTotals:
    def __init__(self) -> None:
        self.requests = self.errors = self.tokens = 0

    @hookimpl
    def exchange_completed(self, exchange: Exchange) -> None:
        self.requests += 1
        self.errors += exchange.status >= 400
        self.tokens += exchange.usage.total_tokens


def main() -> None:
    pm = make_plugin_manager()
    pm.register(UsageTotals(), name="bench-usage-totals")
    build_cli(pm)(prog_name="ferrogw")


if __name__ == "__main__":
    main()
