"""Every options rule, checked where the gateway checks it (building a config), with the
error naming the file line and the key at fault."""

import pytest
from ferro import ConfigError, parse_config

HEAD = """\
providers:
  a: {type: stub}
  b: {type: stub}
targets:
  - virtual_key: a
  - virtual_key: b
strategy:
  mode: ab-test
  options:
"""  # the options start on line 10

TWO_ARMS = """\
    arms:
      - {name: A, percent: 50, target: a}
      - {name: B, percent: 50, target: b}
"""


def build(options, ferro_app, stub_plugins):
    return ferro_app(parse_config(HEAD + options, "gw.yaml", env={}), pm=stub_plugins)


def test_a_valid_experiment_builds_with_its_options(ferro_app, stub_plugins):
    app = build("    experiment: e1\n    sticky: user\n    fallback: true\n" + TWO_ARMS,
                ferro_app, stub_plugins)
    assert app is not None


@pytest.mark.parametrize(("options", "error"), [
    ("    arms:\n      - {name: A, percent: 100, target: a}\n",
     "gw.yaml:10: strategy.options.arms: an experiment needs at least two arms (got 1)"),
    ("    experiment: e1\n",
     "gw.yaml:9: strategy.options.arms: an experiment needs at least two arms (got 0)"),
    (TWO_ARMS.replace("name: B", "name: ''"),
     "gw.yaml:12: strategy.options.arms[1].name: an arm needs a name"),
    (TWO_ARMS.replace("name: B", "name: A"),
     "gw.yaml:12: strategy.options.arms[1].name: arm name 'A' is used twice"),
    (TWO_ARMS.replace("percent: 50, target: a", "percent: 150, target: a")
     .replace("percent: 50, target: b", "percent: -50, target: b"),
     "gw.yaml:12: strategy.options.arms[1].percent: must not be negative (got -50)"),
    (TWO_ARMS.replace("percent: 50, target: b", "percent: 40, target: b"),
     "gw.yaml:10: strategy.options.arms: the arms' percents must add up to 100 "
     "(they add up to 90)"),
    (TWO_ARMS.replace("target: b", "target: c"),
     "gw.yaml:12: strategy.options.arms[1].target: 'c' names no target "
     "(the targets are: a, b)"),
    (TWO_ARMS.replace(", target: b", ""),
     "gw.yaml:12: strategy.options.arms[1]: arm 'B' needs a target, a model, or both"),
    ("    sticky: session\n" + TWO_ARMS,
     "gw.yaml:10: strategy.options.sticky: must be one of key, user, none (got 'session')"),
])
def test_each_rule_is_a_located_config_error(options, error, ferro_app, stub_plugins):
    with pytest.raises(ConfigError) as info:
        build(options, ferro_app, stub_plugins)
    assert str(info.value) == error


@pytest.mark.parametrize(("options", "error"), [
    (TWO_ARMS.replace("percent: 50, target: b", "percent: half, target: b"),
     "gw.yaml:12: strategy.options.arms[1].percent: expected a number, got str 'half'"),
    (TWO_ARMS.replace("target: b}", "target: b, weight: 2}"),
     "gw.yaml:12: strategy.options.arms[1].weight: unknown key 'weight' "
     "(expected one of: name, percent, target, model)"),
    ("    fallback: sometimes\n" + TWO_ARMS,
     "gw.yaml:10: strategy.options.fallback: expected true or false, got str 'sometimes'"),
])
def test_wrong_types_and_unknown_keys_are_located_by_the_kernel(options, error, ferro_app,
                                                                stub_plugins):
    with pytest.raises(ConfigError) as info:
        build(options, ferro_app, stub_plugins)
    assert str(info.value) == error
