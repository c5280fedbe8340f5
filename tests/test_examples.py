"""Every example config validates, and the client snippet runs against a real gateway."""

import runpy
from pathlib import Path

import pytest
from click.testing import CliRunner
from ferro import make_plugin_manager
from ferro.cli import build_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENV = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x",
       "AZURE_OPENAI_API_KEY": "az-x", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}


@pytest.mark.parametrize("path", sorted((EXAMPLES / "configs").iterdir()), ids=lambda p: p.name)
def test_example_config_validates(path, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(build_cli(make_plugin_manager(env={})), ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "✓ Config is valid" in result.output


async def test_python_client_example_runs(ferro_server, capsys, monkeypatch):
    import asyncio

    import openai

    server = await ferro_server({"providers": {"demo": {"type": "echo"}},
                                 "targets": [{"virtual_key": "demo"}]})
    base = str(server.make_url("/v1"))
    real = openai.OpenAI
    monkeypatch.setattr(openai, "OpenAI", lambda **kw: real(**{**kw, "base_url": base}))
    await asyncio.to_thread(runpy.run_path, str(EXAMPLES / "clients" / "openai_python.py"))
    out = capsys.readouterr().out
    assert "echo: Say hello" in out
    assert "echo: Count to five" in out
