"""What an exchange cost: prices per model, shipped as data and extended by the config.

The shipped table (``ferro/data/pricing.yaml``) lists list prices in US dollars per
million tokens: ``input``, ``output``, ``cached_input`` (prompt-cache reads),
``cache_write`` (prompt-cache writes) and ``embedding``, plus a quality ``tier`` for
cost-optimized routing. Entries are named by model, or by ``provider/model`` where one
provider's price differs. The config's ``pricing`` section overrides fields of shipped
entries and adds new ones.

A cost is computed from the usage the provider reported. A model without a price has an
unknown cost (None), never 0.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs
from ruamel.yaml import YAML

from ferro.operations import Usage

__all__ = ["TIERS", "Price", "Pricing"]

#: Quality tiers, lowest first.
TIERS = ("economy", "standard", "premium")

_PER_TOKEN = 1e-6
#: A dated snapshot (``gpt-4o-2024-08-06``, ``claude-3-haiku-20240307``) is priced as
#: its family when it has no entry of its own.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


@attrs.frozen
class Price:
    """One model's prices, in US dollars per million tokens (None: not known)."""

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    embedding: float | None = None
    tier: str | None = None

    def cost(self, operation: str, usage: Usage) -> float | None:
        """The cost of ``usage`` for ``operation``; None when a price it needs is unknown.
        ``prompt_tokens`` counts cache reads and writes too, as OpenAI reports them."""
        if operation == "embeddings":
            rate = self.embedding if self.embedding is not None else self.input
            return None if rate is None else usage.prompt_tokens * rate * _PER_TOKEN
        if self.input is None or self.output is None:
            return None
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        written = min(usage.cache_creation_tokens, usage.prompt_tokens - cached)
        fresh = usage.prompt_tokens - cached - written
        total = (fresh * self.input + usage.completion_tokens * self.output
                 + cached * _or(self.cached_input, self.input)
                 + written * _or(self.cache_write, self.input))
        return total * _PER_TOKEN

    def blended(self) -> float | None:
        """One number to rank models by: input plus output per million tokens (embedding
        models by their embedding price)."""
        if self.input is not None and self.output is not None:
            return self.input + self.output
        return self.embedding if self.embedding is not None else self.input

    def tier_rank(self) -> int:
        """The tier's place in :data:`TIERS` (-1 when the model has no tier)."""
        return TIERS.index(self.tier) if self.tier in TIERS else -1


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


#: How many (model, providers) lookups a table remembers; past it, it starts afresh.
MAX_REMEMBERED = 10_000


class Pricing:
    """The price table a gateway prices with: the shipped one plus the config's."""

    def __init__(self, table: Mapping[str, Price]) -> None:
        """``table``: name -> price. A ``provider/model`` entry takes the fields it leaves
        unset (the tier, say) from the model's own entry."""
        self._table = dict(table)
        #: (model, providers) -> what find() found: every exchange prices its model
        self._found: dict[tuple[str, tuple[str, ...]], Price | None] = {}
        for name, price in table.items():
            general = table.get(name.partition("/")[2])
            if general is not None:
                unset = {k: v for k, v in attrs.asdict(general).items()
                         if getattr(price, k) is None}
                self._table[name] = attrs.evolve(price, **unset)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any]) -> Pricing:
        """The shipped table with ``overrides`` (name -> PriceConfig or mapping) applied,
        field by field."""
        table = dict(shipped())
        for name, override in overrides.items():
            fields = override if isinstance(override, Mapping) else attrs.asdict(override)
            changes = {k: v for k, v in fields.items() if v is not None}
            table[name] = attrs.evolve(table.get(name, Price()), **changes)
        return cls(table)

    def find(self, model: str, *providers: str) -> Price | None:
        """The price of ``model`` as served by the first of ``providers`` (instance name,
        then type) that has its own entry, else the model's general entry; a dated
        snapshot falls back to its family's."""
        key = (model, providers)
        try:
            return self._found[key]
        except KeyError:
            pass
        price = self._entry(model, providers)
        if price is None:
            family = _SNAPSHOT.sub("", model)
            if family != model:
                price = self._entry(family, providers)
        if len(self._found) >= MAX_REMEMBERED:  # model names come from requests: bounded
            self._found.clear()
        self._found[key] = price
        return price

    def _entry(self, model: str, providers: tuple[str, ...]) -> Price | None:
        table = self._table
        for provider in providers:
            price = table.get(f"{provider}/{model}")
            if price is not None:
                return price
        return table.get(model)


@functools.cache
def shipped() -> Mapping[str, Price]:
    """The table that ships with the gateway (read once)."""
    text = resources.files("ferro").joinpath("data/pricing.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text) or {}
    return {str(name): Price(**fields) for name, fields in data.get("models", {}).items()}
