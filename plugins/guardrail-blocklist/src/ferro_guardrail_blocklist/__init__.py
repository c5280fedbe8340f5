"""The ``blocklist`` guardrail, also registered under the older gateway's name
``word-filter`` (whose configs load unchanged and keep matching substrings)."""

from ferro import hookimpl

from ferro_guardrail_blocklist.matcher import PATTERN_WINDOW, Hit, Matcher
from ferro_guardrail_blocklist.options import Options
from ferro_guardrail_blocklist.plugin import Blocklist, WordFilter

__all__ = ["PATTERN_WINDOW", "Blocklist", "Hit", "Matcher", "Options", "WordFilter"]


@hookimpl
def register_plugins(register):
    register("blocklist", Blocklist)
    register("word-filter", WordFilter)
