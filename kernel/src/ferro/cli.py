"""The ``ferrogw`` / ``ferrogw-cli`` command line: serve, validate, plugins, version, and
whatever command groups plugins add through ``register_commands``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import click
import orjson

from ferro.config import Config, load_config
from ferro.errors import ConfigError
from ferro.plugins import FerroPluginManager, make_plugin_manager
from ferro.registry import build_registry
from ferro.storage import EMBEDDED_BACKEND, with_embedded_storage
from ferro.version import __version__

__all__ = ["build_cli", "main"]


#: The response cache of the no-file default, when its package is installed.
EMBEDDED_CACHE = "memory"


def load_or_default(path: str | None, env: Mapping[str, str] = os.environ) -> Config:
    """The config file, or the no-file default (fallback over what the environment
    configures); ``CORS_ORIGINS`` fills an empty CORS allow-list."""
    if path:
        config = load_config(path, env)
    else:
        config = Config()
        config.strategy.mode = "fallback"
    if not config.server.cors_origins and env.get("CORS_ORIGINS"):
        config.server.cors_origins = [o.strip() for o in env["CORS_ORIGINS"].split(",")
                                      if o.strip()]
    return config


def build_cli(pm: FerroPluginManager) -> click.Group:
    @click.group(help="Ferro AI Gateway: one OpenAI-compatible API in front of many LLM providers.")
    def cli() -> None:
        pass

    @cli.command()
    @click.option("--config", "config_path", envvar="GATEWAY_CONFIG", type=click.Path(),
                  help="Config file (JSON or YAML). Env: GATEWAY_CONFIG. Without one, the "
                       "gateway serves every provider whose API key is set, or the echo provider.")
    @click.option("--host", default=None, help="Listen address (default from config, 127.0.0.1).")
    @click.option("--port", type=int, default=None, envvar="PORT",
                  help="Listen port (default from config, 8080; 0: any free port, logged). "
                       "Env: PORT.")
    @click.option("--workers", type=click.IntRange(min=1), default=1, envvar="FERRO_WORKERS",
                  show_default=True,
                  help="Processes serving the one port (server.max_connections is each "
                       "one's). Env: FERRO_WORKERS.")
    @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                  help="Where the embedded SQLite storage lives, for the stores nothing else "
                       "chooses (default storage.data_dir, FERRO_DATA_DIR or ./ferro-data).")
    def serve(config_path: str | None, host: str | None, port: int | None,
              workers: int, data_dir: str | None) -> None:
        """Start the gateway."""
        from ferro.server import serve as run

        try:
            config = load_or_default(config_path)
            if host:
                config.server.host = host
            if port is not None:
                config.server.port = port
            registry = build_registry(pm)
            if EMBEDDED_BACKEND in registry.storage:
                with_embedded_storage(config, data_dir)
            if not config_path and not config.cache.backend and EMBEDDED_CACHE in registry.caches:
                config.cache.backend = EMBEDDED_CACHE  # the no-file default's answer cache
            code = run(config, pm, config_path=config_path, workers=workers)
        except ConfigError as exc:
            raise click.ClickException(exc.message) from None
        sys.exit(code)

    @cli.command()
    @click.argument("config_file", type=click.Path())
    def validate(config_file: str) -> None:
        """Check a config file and print what it sets up."""
        from ferro.gateway import Gateway

        try:
            config = load_config(config_file)
            gateway = Gateway(config, build_registry(pm), os.environ)
        except ConfigError as exc:
            click.echo(f"✗ {exc.message}", err=True)
            sys.exit(1)
        click.echo("✓ Config is valid")
        click.echo(f"  strategy:  {config.strategy.mode}")
        click.echo(f"  targets:   {len(gateway.targets)} "
                   f"({', '.join(t.name for t in gateway.targets)})")
        if gateway.skipped:
            click.echo(f"  skipped:   {', '.join(gateway.skipped)} (no API key in the environment)")
        click.echo(f"  providers: {', '.join(gateway.providers) or 'none'}")
        for entry in config.plugins:
            state = "enabled" if entry.enabled else "disabled"
            click.echo(f"  plugin:    {entry.name} ({entry.stage}, {state})")
        if config.aliases:
            click.echo(f"  aliases:   {', '.join(f'{a} -> {m}' for a, m in config.aliases.items())}")

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def plugins(as_json: bool) -> None:
        """List installed plugins: distribution, version, hooks, and the names they register."""
        rows = plugin_rows(pm)
        if as_json:
            click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
            return
        for row in rows:
            click.echo(f"{row['name']}  {row['distribution'] or '-'} {row['version'] or ''}")
            click.echo(f"    hooks: {', '.join(row['hooks'])}")
            for kind, names in row["registers"].items():
                click.echo(f"    {kind}: {', '.join(names)}")

    @cli.command()
    def version() -> None:
        """Print the version."""
        click.echo(f"ferrogw {__version__}")

    pm.hook.register_commands(cli=cli)
    return cli


def plugin_rows(pm: FerroPluginManager) -> list[dict[str, Any]]:
    registry = build_registry(pm)
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        info = pm.infos.get(name)
        rows.append({
            "name": name,
            "distribution": info.distribution if info else None,
            "version": info.version if info else None,
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or ()),
            "registers": registry.registered_by(name),
        })
    return rows


def main() -> None:
    try:
        pm = make_plugin_manager()
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    build_cli(pm)(prog_name=os.path.basename(sys.argv[0]) or "ferrogw")
