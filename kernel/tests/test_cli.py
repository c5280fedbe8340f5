import json

import click
import pytest
from click.testing import CliRunner
from ferro import hookimpl, make_plugin_manager
from ferro.cli import build_cli
from ferro.version import __version__


@pytest.fixture
def run():
    def invoke(*args, pm=None):
        cli = build_cli(pm or make_plugin_manager(env={}))
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_plugins_json_lists_installed_plugins(run):
    result = run("plugins", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {"echo", "openai", "single", "fallback"} <= set(rows)
    assert rows["openai"]["distribution"] == "ferro-provider-openai"
    assert rows["openai"]["version"]
    assert rows["openai"]["hooks"] == ["register_providers"]
    assert rows["openai"]["registers"] == {"providers": ["openai"]}
    assert rows["fallback"]["registers"] == {"strategies": ["fallback"]}


def test_plugins_text(run):
    result = run("plugins")
    assert "openai  ferro-provider-openai" in result.output
    assert "providers: openai" in result.output


def test_validate_prints_a_summary(run, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text("strategy: {mode: fallback}\nproviders:\n  demo: {type: echo}\n"
                    "targets:\n  - virtual_key: demo\nplugins: []\naliases: {fast: echo-1}\n")
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "✓ Config is valid" in result.output
    assert "strategy:  fallback" in result.output
    assert "targets:   1 (demo)" in result.output
    assert "fast -> echo-1" in result.output


def test_validate_names_the_line_of_a_broken_file(run, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text("strategy:\n  mode: fallback\ntargets:\n  - virtual_key: echo\n"
                    "    retry: {atempts: 3}\n")
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert f"{path}:5: targets[0].retry.atempts: unknown key 'atempts'" in result.output


def test_validate_unknown_strategy_and_provider(run, tmp_path):
    path = tmp_path / "gw.json"
    path.write_text('{"strategy": {"mode": "roundrobin"},\n "targets": [{"virtual_key": "echo"}]}')
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "gw.json:1: strategy.mode: unknown strategy 'roundrobin'" in result.output
    assert "installed: " in result.output
    path.write_text('{\n "targets": [{"virtual_key": "nosuch"}]}')
    result = run("validate", str(path))
    assert "gw.json:2: targets[0].virtual_key: unknown provider 'nosuch'" in result.output


def test_version(run):
    assert run("version").output.strip() == f"ferrogw {__version__}"


def test_plugins_can_add_command_groups(run):
    class Commands:
        @hookimpl
        def register_commands(self, cli):
            @cli.group()
            def demo():
                "Demo commands."

            @demo.command()
            def hello():
                click.echo("hello from a plugin")

    pm = make_plugin_manager(env={})
    pm.register(Commands(), name="demo-commands")
    assert run("demo", "hello", pm=pm).output == "hello from a plugin\n"


def test_both_console_scripts_are_installed():
    from importlib.metadata import distribution

    scripts = {ep.name: ep.value for ep in distribution("ferro-gateway").entry_points
               if ep.group == "console_scripts"}
    assert scripts == {"ferrogw": "ferro.cli:main", "ferrogw-cli": "ferro.cli:main"}


def test_cors_origins_from_the_environment(tmp_path):
    from ferro.cli import load_or_default

    assert load_or_default(None, {"CORS_ORIGINS": "https://a.example, https://b.example"}
                           ).server.cors_origins == ["https://a.example", "https://b.example"]
    path = tmp_path / "gw.yaml"
    path.write_text("server: {cors_origins: ['https://mine.example']}\n")
    assert load_or_default(str(path), {"CORS_ORIGINS": "https://a.example"}
                           ).server.cors_origins == ["https://mine.example"]
    assert load_or_default(None, {}).strategy.mode == "fallback"
