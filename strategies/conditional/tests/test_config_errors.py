"""Bad conditional configs are refused when the gateway is built, each problem named by
its config path and file line."""

import pytest
from aiohttp import web
from ferro import ConfigError, parse_config

# Lines 1-8; the strategy's conditions and options follow from line 9.
HEAD = """\
providers:
  a: {type: stub}
  b: {type: stub}
targets:
  - virtual_key: a
  - virtual_key: b
strategy:
  mode: conditional
"""

ONE_RULE = "  conditions:\n    - {key: model, value: gpt-4o, target_key: b}\n"  # lines 9-10


@pytest.fixture
def build(ferro_app, stub_plugins):
    """``build(yaml_text)``: parse it as ``gw.yaml`` and build the gateway over stubs."""
    return lambda text: ferro_app(parse_config(text, "gw.yaml", env={}), pm=stub_plugins)


def refusal(build, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        build(text)
    return info.value.message


@pytest.mark.parametrize(("tail", "expected"), [
    pytest.param("", "gw.yaml:7: strategy.conditions: conditional mode needs at least one "
                     "condition", id="no conditions"),
    pytest.param("  conditions: []\n", "gw.yaml:9: strategy.conditions: conditional mode needs "
                                       "at least one condition", id="empty conditions"),
    pytest.param(
        "  conditions:\n"
        "    - {key: model, value: gpt-4o, target_key: b}\n"
        "    - {key: modle, value: gpt-4o, target_key: b}\n",
        "gw.yaml:11: strategy.conditions[1].key: unknown rule key 'modle' (expected one of: "
        "model, model_prefix, prompt_regex, prompt_contains, user, header, key_name, key_tag)",
        id="unknown key"),
    pytest.param("  conditions:\n    - {key: model_prefix, value: '', target_key: b}\n",
                 "gw.yaml:10: strategy.conditions[0].value: a model_prefix rule needs a value",
                 id="empty value"),
    pytest.param("  conditions:\n    - {key: prompt_contains, target_key: b}\n",
                 "gw.yaml:10: strategy.conditions[0].value: a prompt_contains rule needs a value",
                 id="no value"),
    pytest.param("  conditions:\n    - {key: model, value: gpt-4o, target_key: c}\n",
                 "gw.yaml:10: strategy.conditions[0].target_key: unknown provider 'c'",
                 id="unknown target"),
    pytest.param("  conditions:\n    - {key: model, value: gpt-4o}\n",
                 "gw.yaml:10: strategy.conditions[0].target_key: name the target to route to "
                 "(one of: a, b)", id="no target"),
    pytest.param(
        "  conditions:\n"
        "    - key: prompt_regex\n"
        "      target_key: b\n"
        "      value: 'def (\\w+'\n",
        "gw.yaml:12: strategy.conditions[0].value: not a valid regular expression: missing ), "
        "unterminated subpattern at position 4", id="bad regex"),
    pytest.param("  conditions:\n    - {key: header, value: ml, target_key: b}\n",
                 "gw.yaml:10: strategy.conditions[0].header: a header rule needs the header to "
                 "look at (header: X-Team)", id="header rule without header"),
    pytest.param(
        "  conditions:\n    - {key: header, header: Authorization, value: x, target_key: b}\n",
        "gw.yaml:10: strategy.conditions[0].header: routing cannot see header 'Authorization': "
        "rules see X-*, OpenAI-*, Anthropic-* and User-Agent headers", id="invisible header"),
    pytest.param(
        "  conditions:\n    - {key: header, header: X-Api-Key, value: x, target_key: b}\n",
        "gw.yaml:10: strategy.conditions[0].header: routing cannot see header 'X-Api-Key': "
        "rules see X-*, OpenAI-*, Anthropic-* and User-Agent headers, never a credential",
        id="credential header"),
    pytest.param(
        "  conditions:\n    - {key: model, header: X-Team, value: gpt-4o, target_key: b}\n",
        "gw.yaml:10: strategy.conditions[0].header: only a header rule takes 'header'",
        id="header on another rule"),
    pytest.param(
        "  conditions:\n    - {key: user, value: alice, scope: all, target_key: b}\n",
        "gw.yaml:10: strategy.conditions[0].scope: only prompt_regex and prompt_contains rules "
        "take 'scope'", id="scope on another rule"),
    pytest.param(
        "  conditions:\n    - {key: model, value: gpt-4o, case_sensitive: true, target_key: b}\n",
        "gw.yaml:10: strategy.conditions[0].case_sensitive: only prompt_regex and "
        "prompt_contains rules take 'case_sensitive' (the others compare exactly)",
        id="case_sensitive on another rule"),
    pytest.param(ONE_RULE + "  options: {default: c}\n",
                 "gw.yaml:11: strategy.options.default: 'c' names no target (the targets are: "
                 "a, b)", id="unknown default"),
    pytest.param(ONE_RULE + "  options: {defualt: a}\n",
                 "gw.yaml:11: strategy.options.defualt: unknown key 'defualt' (expected one of: "
                 "default, fallback)", id="unknown option"),
    pytest.param(ONE_RULE + "  options: {fallback: sometimes}\n",
                 "gw.yaml:11: strategy.options.fallback: expected true or false",
                 id="option of the wrong type"),
])
def test_errors_name_the_key_path_and_line(build, tail, expected):
    assert expected in refusal(build, HEAD + tail)


def test_empty_values_of_user_and_header_rules_are_accepted(build):
    text = HEAD + ONE_RULE + (
        "    - {key: prompt_regex, value: '```|\\bdef |\\bclass ', target_key: b,\n"
        "       model: codestral-latest}\n"
        "    - {key: header, header: X-Team, value: '', target_key: a}\n"
        "    - {key: user, value: '', target_key: b}\n"
        "  options: {default: b, fallback: true}\n")
    assert isinstance(build(text), web.Application)


def test_a_rule_may_name_a_provider_that_targets_do_not_list(build):
    """As in the Go version: the provider a rule names joins the targets, after them."""
    app = build(HEAD.replace("  b: {type: stub}\n", "  b: {type: stub}\n  c: {type: stub}\n")
                + "  conditions:\n    - {key: model, value: gpt-4o, target_key: c}\n")
    from ferro.app import PIPELINE

    targets = app[PIPELINE].gateway.targets
    assert [t.name for t in targets] == ["a", "b", "c"]
