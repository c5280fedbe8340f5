import json

import pytest
from ferro import ConfigError, Duration, load_config, parse_config

GO_CONFIG = """\
strategy:
  mode: fallback
targets:
  - virtual_key: openai
    retry: {attempts: 3}
    circuit_breaker: {failure_threshold: 5, success_threshold: 1, timeout: 30s}
  - virtual_key: anthropic
    weight: 0.3
aliases: {fast: gpt-4o-mini}
plugins:
  - name: word-filter
    type: guardrail
    stage: before_request
    enabled: true
    config: {blocked_words: ["password", "secret"], case_sensitive: false}
"""


def test_go_config_loads_unchanged():
    config = parse_config(GO_CONFIG, "gateway.yaml")
    assert config.strategy.mode == "fallback"
    assert [t.virtual_key for t in config.targets] == ["openai", "anthropic"]
    assert config.targets[0].retry.attempts == 3
    assert config.targets[0].circuit_breaker.timeout == 30.0
    assert config.targets[1].weight == 0.3
    assert config.aliases == {"fast": "gpt-4o-mini"}
    assert config.plugins[0].config["blocked_words"] == ["password", "secret"]


def test_json_and_yaml_give_the_same_config(tmp_path):
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(GO_CONFIG)
    (tmp_path / "c.json").write_text(json.dumps(data, indent=2))
    (tmp_path / "c.yaml").write_text(GO_CONFIG)
    assert load_config(tmp_path / "c.json") == load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize(("text", "expected"), [
    ("targets:\n  - virtual_key: openai\n    wieght: 2\n",
     "c.yaml:3: targets[0].wieght: unknown key 'wieght'"),
    ("server:\n  port: eighty\n", "c.yaml:2: server.port: expected an integer"),
    ("targets:\n  - virtual_key: openai\n    weight: -1\n",
     "c.yaml:3: targets[0].weight: must not be negative"),
    ("targets:\n  - virtual_key: a\n    circuit_breaker:\n      timeout: soon\n",
     "c.yaml:4: targets[0].circuit_breaker.timeout: expected a duration"),
    ("plugins:\n  - name: x\n    stage: during_request\n", "c.yaml:3: plugins[0].stage"),
    ("targets:\n  - weight: 1\n", "c.yaml:2: targets[0].virtual_key: this key is required"),
    ("targets: []\n", "c.yaml:1: targets: at least one target is required"),
    ("targets:\n  - virtual_key: a\n    retry: {attempts: 2, jitter: 1.5}\n",
     "c.yaml:3: targets[0].retry.jitter: must be between 0 and 1"),
    ("targets:\n  - virtual_key: a\n    retry:\n      retry_on: [429, 700]\n",
     "c.yaml:4: targets[0].retry.retry_on: must list HTTP status codes (got 700)"),
    ("targets:\n  - virtual_key: a\n    timeout: {first_bite: 2s}\n",
     "c.yaml:3: targets[0].timeout.first_bite: unknown key"),
    ("pricing:\n  m: {input: -1}\n", "c.yaml:2: pricing.m.input: must not be negative"),
    ("pricing:\n  m: {tier: gold}\n", "c.yaml:2: pricing.m.tier: must be one of economy"),
    ("aliases:\n  fast: fast\n", "c.yaml:2: aliases.fast: alias 'fast' refers to itself"),
    ("aliases:\n  a: b\n  b: gpt-4o\n", "alias 'a' points at another alias"),
    ("strategy:\n  conditions:\n    - {key: model, scope: everything}\n",
     "c.yaml:3: strategy.conditions[0].scope: must be one of last_user, all"),
    ("targets: [\n", "c.yaml:2: invalid YAML"),
])
def test_errors_name_the_key_path_and_line(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    assert expected in info.value.message


def test_every_problem_is_reported_at_once():
    text = "server:\n  port: x\n  hots: y\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    assert "c.yaml:2: server.port" in info.value.message
    assert "c.yaml:3: server.hots: unknown key 'hots'" in info.value.message


def test_json_syntax_error_names_the_line():
    with pytest.raises(ConfigError, match=r"c.json:3: invalid JSON"):
        parse_config('{\n  "targets": [\n  }\n', "c.json")


def test_unsupported_extension():
    with pytest.raises(ConfigError, match=r"unsupported config file extension '.toml'"):
        parse_config("", "c.toml")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_env_interpolation_with_default_and_missing():
    text = "providers:\n  openai:\n    api_key: ${MY_KEY}\n    base_url: ${MY_URL:-http://x}\n"
    config = parse_config(text, "c.yaml", env={"MY_KEY": "sk-1"})
    assert config.providers["openai"].api_key == "sk-1"
    assert config.providers["openai"].base_url == "http://x"
    with pytest.raises(ConfigError, match=r"c.yaml:3: providers.openai.api_key: environment "
                                          r"variable MY_KEY is not set"):
        parse_config(text, "c.yaml", env={})


def test_provider_specific_keys_become_options():
    text = "providers:\n  az:\n    type: azure-openai\n    deployment: gpt4o\n    timeout: 5s\n"
    config = parse_config(text, "c.yaml")
    settings = config.providers["az"]
    assert settings.type == "azure-openai"
    assert settings.timeout == 5.0
    assert settings.options == {"deployment": "gpt4o"}


@pytest.mark.parametrize(("value", "seconds"), [
    ("30s", 30.0), ("100ms", 0.1), ("1m30s", 90.0), ("1.5s", 1.5), (2, 2.0), (0.25, 0.25),
])
def test_durations(value, seconds):
    assert Duration.parse(value) == pytest.approx(seconds)


def test_empty_file_gives_defaults():
    config = parse_config("", "c.yaml")
    assert config.strategy.mode == "single"
    assert config.server.port == 8080
    assert config.server.max_body_size == 10 * 1024 * 1024


def test_to_dict_hides_api_keys():
    config = parse_config("providers:\n  openai: {api_key: sk-secret}\n", "c.yaml")
    assert "sk-secret" not in json.dumps(config.to_dict())


def test_empty_mode_means_single():
    assert parse_config("strategy: {mode: ''}\n", "c.yaml").strategy.mode == "single"


def test_a_string_where_a_list_goes_is_an_error_not_a_list_of_characters():
    with pytest.raises(ConfigError, match=r"gw.yaml:2: server.cors_origins: expected a list, "
                                          r"got str 'https://a.example'"):
        parse_config("server:\n  cors_origins: https://a.example\n", "gw.yaml", env={})
    config = parse_config("server:\n  cors_origins: [https://a.example]\n", "gw.yaml", env={})
    assert config.server.cors_origins == ["https://a.example"]
