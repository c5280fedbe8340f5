"""The rules of the ``conditional`` strategy: each config ``Condition`` checked and compiled,
once, into a :class:`Rule` whose ``matches`` is a plain function of the request.

Every problem is an :class:`~ferro.OptionError` naming the config path at fault, so the
gateway reports it with the file's line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from ferro import Condition, OptionError, RequestContext, Target, routable_header, target_named

from ferro_strategy_conditional.prompt import PromptText

__all__ = ["PROMPT_KEYS", "RULE_KEYS", "Rule", "compile_rules"]

#: Whether a request meets a rule. The prompt text is read only if the rule asks for it.
Test = Callable[[RequestContext, PromptText], bool]
Path = tuple[Any, ...]

#: The rules that look at the prompt text, the only ones ``scope`` and
#: ``case_sensitive`` apply to.
PROMPT_KEYS = ("prompt_regex", "prompt_contains")

#: Rules whose empty value means something: the field (or header) is absent or empty. An
#: empty value for any other rule would match everything or nothing.
_EMPTY_MEANS_ABSENT = frozenset({"user", "header"})


@attrs.frozen
class Rule:
    """One compiled condition: requests it ``matches`` go to ``target``, asking for
    ``model`` instead of the request's when it is set."""

    index: int
    target: Target
    model: str
    matches: Test


def compile_rules(conditions: Sequence[Condition], targets: Sequence[Target]) -> list[Rule]:
    """The rules of ``conditions``, in order; raise an OptionError for the first bad one."""
    if not conditions:
        raise OptionError(("strategy", "conditions"),
                          "conditional mode needs at least one condition "
                          "({key, value, target_key})")
    return [_compile(i, condition, targets) for i, condition in enumerate(conditions)]


def _compile(index: int, condition: Condition, targets: Sequence[Target]) -> Rule:
    at: Path = ("strategy", "conditions", index)
    build = _BUILDERS.get(condition.key)
    if build is None:
        raise OptionError((*at, "key"), f"unknown rule key {condition.key!r} "
                                        f"(expected one of: {', '.join(RULE_KEYS)})")
    if not condition.value and condition.key not in _EMPTY_MEANS_ABSENT:
        raise OptionError((*at, "value"), f"a {condition.key} rule needs a value")
    _check_applies(condition, at)
    target = target_named(condition.target_key, targets, (*at, "target_key"))
    return Rule(index, target, condition.model, build(condition, at))


def _check_applies(condition: Condition, at: Path) -> None:
    """Refuse settings the rule's key ignores: they would mislead whoever reads the config."""
    if condition.header and condition.key != "header":
        raise OptionError((*at, "header"), "only a header rule takes 'header'")
    if condition.key in PROMPT_KEYS:
        return
    prompt_keys = " and ".join(PROMPT_KEYS)
    if condition.scope != "last_user":
        raise OptionError((*at, "scope"), f"only {prompt_keys} rules take 'scope'")
    if condition.case_sensitive:
        raise OptionError((*at, "case_sensitive"), f"only {prompt_keys} rules take "
                          "'case_sensitive' (the others compare exactly)")


# --- one builder per rule key -------------------------------------------------------------


def _model(condition: Condition, at: Path) -> Test:
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return ctx.model == value

    return test


def _model_prefix(condition: Condition, at: Path) -> Test:
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return ctx.model.startswith(value)

    return test


def _prompt_regex(condition: Condition, at: Path) -> Test:
    try:
        pattern = re.compile(condition.value, 0 if condition.case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise OptionError((*at, "value"), f"not a valid regular expression: {exc}") from None
    scope = condition.scope

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return pattern.search(prompt.text(scope)) is not None

    return test


def _prompt_contains(condition: Condition, at: Path) -> Test:
    scope = condition.scope
    if condition.case_sensitive:
        value = condition.value

        def exact(ctx: RequestContext, prompt: PromptText) -> bool:
            return value in prompt.text(scope)

        return exact
    folded = condition.value.casefold()

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return folded in prompt.folded(scope)

    return test


def _user(condition: Condition, at: Path) -> Test:
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return (ctx.user or "") == value

    return test


def _header(condition: Condition, at: Path) -> Test:
    name = condition.header.lower()
    if not name:
        raise OptionError((*at, "header"),
                          "a header rule needs the header to look at (header: X-Team)")
    if not routable_header(name):
        raise OptionError((*at, "header"), f"routing cannot see header {condition.header!r}: "
                          "rules see X-*, OpenAI-*, Anthropic-* and User-Agent headers, "
                          "never a credential")
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return ctx.headers.get(name, "") == value

    return test


def _key_name(condition: Condition, at: Path) -> Test:
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        return ctx.identity is not None and ctx.identity.name == value

    return test


def _key_tag(condition: Condition, at: Path) -> Test:
    value = condition.value

    def test(ctx: RequestContext, prompt: PromptText) -> bool:
        if ctx.identity is None:
            return False
        tags = ctx.identity.attributes.get("tags") or ()
        return tags == value if isinstance(tags, str) else value in tags

    return test


_BUILDERS: dict[str, Callable[[Condition, Path], Test]] = {
    "model": _model,
    "model_prefix": _model_prefix,
    "prompt_regex": _prompt_regex,
    "prompt_contains": _prompt_contains,
    "user": _user,
    "header": _header,
    "key_name": _key_name,
    "key_tag": _key_tag,
}

#: Every rule key, in the order the docs list them.
RULE_KEYS = tuple(_BUILDERS)
