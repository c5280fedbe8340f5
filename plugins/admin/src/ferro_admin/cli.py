"""``ferrogw-cli admin``: the gateway's management API (``/admin``) from a terminal.

Every command is one HTTP call to a running gateway, made with the standard library's
``urllib`` so the CLI needs nothing the kernel does not already bring. The group options
say which gateway, which API key, and how to print the answer: ``table`` (aligned columns
for people), ``json`` (the API's JSON, indented) or ``yaml`` (the same data as YAML).
Errors come out as ``Error: <the API's message> (HTTP <status> <code>)`` on stderr with
exit code 1; the API key is never printed.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem
from ferro import Duration, __version__
from ruamel.yaml import YAML, YAMLError

__all__ = ["admin"]

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 15.0
OUTPUTS = ("table", "json", "yaml")
SCOPES = ("admin", "read_only", "inference")
LOG_STAGES = ("after_request", "on_error")
#: Printed (on stderr) next to a full secret, which the gateway returns only on create and rotate.
SHOWN_ONCE = "Save this key now: the gateway shows the full secret only this once."
#: Key-id completion asks the gateway; a shell waiting on a dead gateway is worse than no list.
COMPLETION_TIMEOUT = 2.0

F = TypeVar("F", bound=Callable[..., Any])


# --- talking to the gateway ---------------------------------------------------------------


class GatewayAPIError(click.ClickException):
    """A call that failed: the gateway's error, or no answer at all. Exit code 1."""


@dataclass(frozen=True)
class AdminSession:
    """Where the gateway is, how to authenticate, and how answers are printed."""

    gateway_url: str
    api_key: str | None
    output: str
    timeout: float

    def call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
             body: Any = None, timeout: float | None = None) -> Any:
        """Send one request and return the decoded JSON answer (``None`` for an empty one).
        Raises :class:`GatewayAPIError` for an error answer or an unreachable gateway."""
        url = self.gateway_url + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json", "User-Agent": f"ferrogw-cli/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        timeout = timeout or self.timeout
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._api_error(exc.code, exc.reason, exc.read()) from None
        except TimeoutError:
            raise GatewayAPIError(f"the gateway at {self.gateway_url} gave no answer within "
                                  f"{timeout:g} s; raise --timeout if it is just slow") from None
        except urllib.error.URLError as exc:
            raise self._unreachable(_reason(exc.reason)) from None
        except OSError as exc:
            raise self._unreachable(_reason(exc)) from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise GatewayAPIError(
                f"{self.gateway_url} answered {method} {path} with something that is not JSON; "
                "check that --gateway-url points at a Ferro gateway") from None

    def show(self, data: Any, table: Callable[[Any], str]) -> None:
        """Print ``data`` in the chosen output; ``table`` renders it for ``--output table``."""
        if self.output == "json":
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        elif self.output == "yaml":
            click.echo(to_yaml(data), nl=False)
        else:
            click.echo(table(data).rstrip("\n"))

    def _api_error(self, status: int, reason: str, raw: bytes) -> GatewayAPIError:
        error = _error_object(raw)
        message = str(error.get("message") or reason or "request failed")
        detail = f"HTTP {status}"
        if error.get("code") or error.get("type"):
            detail += f" {error.get('code') or error.get('type')}"
        if error.get("param"):
            detail += f", param {error['param']}"
        text = f"{message} ({detail})"
        if status == 401 and not self.api_key:
            text += "; pass --api-key or set FERROGW_API_KEY"
        return GatewayAPIError(self._scrub(text))

    def _unreachable(self, why: str) -> GatewayAPIError:
        return GatewayAPIError(self._scrub(
            f"cannot reach the gateway at {self.gateway_url}: {why}. Start it with "
            "`ferrogw serve`, or point the CLI at it with --gateway-url or FERROGW_URL"))

    def _scrub(self, text: str) -> str:
        """``text`` with the API key masked, whatever a server or proxy echoed back."""
        return text.replace(self.api_key, "***") if self.api_key else text


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_object(raw: bytes) -> dict[str, Any]:
    """The ``error`` object of an error answer, or ``{}`` when it has none (a proxy's page)."""
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {"message": str(error)}


def _reason(reason: Any) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "the connection timed out"
    return getattr(reason, "strerror", None) or str(reason)


def _segment(value: Any) -> str:
    """``value`` as one URL path segment."""
    return urllib.parse.quote(str(value), safe="")


def session_of(ctx: click.Context) -> AdminSession:
    """The session the ``admin`` group's options describe. Shell completion runs without
    the group's callback, so this reads the group's parsed options rather than ``ctx.obj``."""
    node: click.Context | None = ctx
    while node is not None and node.command is not admin:
        node = node.parent
    if node is None:
        raise click.UsageError("not inside `admin`")
    params = node.params
    return AdminSession(params.get("gateway_url") or DEFAULT_URL, params.get("api_key"),
                        params.get("output") or "table", params.get("timeout") or DEFAULT_TIMEOUT)


def _gateway_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise click.BadParameter(f"expected an http:// or https:// URL, got {value!r}",
                                 param_hint="'--gateway-url'")
    return url


def complete_key_ids(ctx: click.Context, _param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    """Key ids (with their names as help) for shell completion; nothing when the gateway
    cannot be asked, because completion must never break the shell."""
    try:
        keys = session_of(ctx).call("GET", "/admin/keys", timeout=COMPLETION_TIMEOUT)
        return [CompletionItem(key["id"], help=key.get("name"))
                for key in keys if str(key["id"]).startswith(incomplete)]
    except Exception:  # any failure means: no suggestions
        return []


# --- parameter types ----------------------------------------------------------------------


class DurationType(click.ParamType):
    """A length of time: seconds (``3600``) or a Go-style duration (``720h``, ``1h30m``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip()
        try:
            seconds = float(text) if text.replace(".", "", 1).isdigit() else Duration.parse(text)
            length = timedelta(seconds=seconds)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"expected seconds or a duration such as 720h, 30m or 1h30m, got {value!r}",
                      param, ctx)
        if seconds <= 0:
            self.fail(f"must be longer than zero, got {value!r}", param, ctx)
        return length


DURATION = DurationType()


class MomentType(click.ParamType):
    """A point in time, sent as RFC 3339 UTC: a timestamp (UTC unless it says otherwise)
    or a duration meaning that long ago (``24h``)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = datetime.now(UTC) - DURATION.convert(text, param, ctx)
            except (click.BadParameter, OverflowError):
                self.fail(f"expected an RFC 3339 time (2025-01-31T12:00:00Z) or a duration "
                          f"ago (24h), got {value!r}", param, ctx)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return rfc3339(moment)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


MOMENT = MomentType()


# --- rendering ----------------------------------------------------------------------------


def to_yaml(data: Any) -> str:
    """``data`` as block-style YAML, keys in the API's order."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def cell(value: Any) -> str:
    """One value as table text: ``-`` for nothing, lists comma-joined."""
    if value is None or value in ("", [], {}):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items())
    return str(value)


Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: row.get(name)


def columns(rows: Iterable[Mapping[str, Any]], spec: Sequence[Column], empty: str) -> str:
    """Rows as aligned columns under upper-case headers, or ``empty`` when there are none."""
    cells = [[cell(get(row)) for _, get in spec] for row in rows]
    if not cells:
        return empty
    lines = [[header for header, _ in spec], *cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(spec))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def fields(obj: Mapping[str, Any]) -> str:
    """An object's fields as aligned ``name  value`` lines."""
    if not obj:
        return "-"
    width = max(len(str(name)) for name in obj)
    return "\n".join(f"{str(name).ljust(width)}  {cell(value)}" for name, value in obj.items())


KEY_COLUMNS: Sequence[Column] = (
    ("ID", field("id")), ("NAME", field("name")), ("KEY", field("key")),
    ("SCOPES", field("scopes")), ("STATUS", field("status")),
    ("EXPIRES", field("expires_at")), ("LAST USED", field("last_used_at")),
    ("USES", field("usage_count")),
)


def show_secret(session: AdminSession, key: Mapping[str, Any]) -> None:
    """A key whose answer holds the full secret (create, rotate), with the shown-once warning."""
    session.show(key, fields)
    click.echo(SHOWN_ONCE, err=True)


# --- shared options -----------------------------------------------------------------------


def key_id_argument(f: F) -> F:
    return click.argument("key_id", metavar="ID", shell_complete=complete_key_ids)(f)


def confirm_option(f: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)


def confirm(yes: bool, question: str) -> None:
    if not yes:
        click.confirm(question, abort=True)


def scopes_option(text: str) -> Callable[[F], F]:
    return click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES), help=text)


def models_option(text: str) -> Callable[[F], F]:
    return click.option("--model", "models", multiple=True, help=text)


def log_filters(f: F) -> F:
    """``--provider``, ``--model``, ``--stage``: the filters every log route takes."""
    for decorator in (
        click.option("--provider", help="Only this provider's entries."),
        click.option("--model", help="Only this model's entries."),
        click.option("--stage", type=click.Choice(LOG_STAGES),
                     help="Only answers (after_request) or only errors (on_error)."),
    ):
        f = decorator(f)
    return f


def since_option(what: str) -> Callable[[F], F]:
    return click.option("--since", type=MOMENT,
                        help=f"Only {what} since this time: RFC 3339, or a duration ago (24h).")


pass_session = click.make_pass_decorator(AdminSession)


# --- the group ----------------------------------------------------------------------------


COMPLETION_HELP = """\b
Shell completion (commands, options, and key ids from the gateway):
  bash  eval "$(_FERROGW_CLI_COMPLETE=bash_source ferrogw-cli)"
  zsh   eval "$(_FERROGW_CLI_COMPLETE=zsh_source ferrogw-cli)"
  fish  _FERROGW_CLI_COMPLETE=fish_source ferrogw-cli | source"""


@click.group(epilog=COMPLETION_HELP)
@click.option("--gateway-url", envvar="FERROGW_URL", default=DEFAULT_URL, show_default=True,
              show_envvar=True, callback=lambda _c, _p, v: _gateway_url(v),
              help="The gateway to manage.")
@click.option("--api-key", envvar="FERROGW_API_KEY", show_envvar=True,
              help="A stored API key with the admin scope (read_only for reading).")
@click.option("--output", "-o", envvar="FERROGW_OUTPUT", show_envvar=True, default="table",
              show_default=True, type=click.Choice(OUTPUTS, case_sensitive=False),
              help="table for people; json (the API's answer) or yaml for scripts.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for the gateway.")
@click.pass_context
def admin(ctx: click.Context, gateway_url: str, api_key: str | None, output: str,
          timeout: float) -> None:
    """Manage a running gateway: API keys, config, request logs, providers."""
    ctx.obj = AdminSession(gateway_url, api_key, output, timeout)


# --- keys ---------------------------------------------------------------------------------


@admin.group()
def keys() -> None:
    """Create, inspect, rotate and revoke the gateway's API keys."""


@keys.command("list")
@pass_session
def keys_list(session: AdminSession) -> None:
    """List every key (masked), oldest first."""
    session.show(session.call("GET", "/admin/keys"),
                 lambda rows: columns(rows, KEY_COLUMNS, "No API keys."))


@keys.command("get")
@key_id_argument
@pass_session
def keys_get(session: AdminSession, key_id: str) -> None:
    """Show one key (masked)."""
    session.show(session.call("GET", f"/admin/keys/{_segment(key_id)}"), fields)


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@scopes_option("Repeat for several (default: inference).")
@click.option("--expires-in", type=DURATION, help="Lifetime: seconds or a duration (720h).")
@models_option("Restrict the key to this model; repeat for several (default: any model).")
@click.option("--budget", type=click.FloatRange(min=0), help="Spending limit in USD.")
@pass_session
def keys_create(session: AdminSession, name: str, scopes: tuple[str, ...],
                expires_in: timedelta | None, models: tuple[str, ...],
                budget: float | None) -> None:
    """Create a key and print its secret (shown only this once)."""
    body: dict[str, Any] = {"name": name}
    if scopes:
        body["scopes"] = list(scopes)
    if expires_in is not None:
        body["expires_in"] = int(expires_in.total_seconds())
    if models:
        body["models"] = list(models)
    if budget is not None:
        body["budget"] = budget
    show_secret(session, session.call("POST", "/admin/keys", body=body))


@keys.command("update")
@key_id_argument
@click.option("--name", help="A new name.")
@scopes_option("Replace the scopes; repeat for several.")
@click.option("--expires-in", type=DURATION, help="Expire this long from now (720h).")
@click.option("--clear-expiration", is_flag=True, help="Never expire.")
@models_option("Replace the allowed models; repeat for several.")
@click.option("--any-model", is_flag=True, help="Allow every model again.")
@click.option("--budget", type=click.FloatRange(min=0), help="A new spending limit in USD.")
@click.option("--clear-budget", is_flag=True, help="Remove the spending limit.")
@pass_session
def keys_update(session: AdminSession, key_id: str, name: str | None, scopes: tuple[str, ...],
                expires_in: timedelta | None, clear_expiration: bool, models: tuple[str, ...],
                any_model: bool, budget: float | None, clear_budget: bool) -> None:
    """Change a key's name, scopes, expiry, models or budget."""
    for value, clearing, option, clear_option in (
            (expires_in, clear_expiration, "--expires-in", "--clear-expiration"),
            (models, any_model, "--model", "--any-model"),
            (budget, clear_budget, "--budget", "--clear-budget")):
        if clearing and value not in (None, ()):
            raise click.UsageError(f"{option} and {clear_option} contradict each other; give one.")
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if scopes:
        body["scopes"] = list(scopes)
    if expires_in is not None:
        body["expires_at"] = rfc3339(datetime.now(UTC) + expires_in)
    if clear_expiration:
        body["clear_expiration"] = True
    if models or any_model:
        body["models"] = list(models)
    if budget is not None:
        body["budget"] = budget
    if clear_budget:
        body["clear_budget"] = True
    if not body:
        raise click.UsageError("Nothing to update: give at least one option (see --help).")
    session.show(session.call("PUT", f"/admin/keys/{_segment(key_id)}", body=body), fields)


@keys.command("delete")
@key_id_argument
@confirm_option
@pass_session
def keys_delete(session: AdminSession, key_id: str, yes: bool) -> None:
    """Delete a key for good (it stops working at once)."""
    confirm(yes, f"Delete key {key_id}?")
    session.call("DELETE", f"/admin/keys/{_segment(key_id)}")
    if session.output == "table":
        click.echo(f"Key {key_id} deleted.")


@keys.command("revoke")
@key_id_argument
@pass_session
def keys_revoke(session: AdminSession, key_id: str) -> None:
    """Revoke a key: it stops working but stays listed."""
    session.show(session.call("POST", f"/admin/keys/{_segment(key_id)}/revoke"),
                 lambda _answer: f"Key {key_id} revoked.")


@keys.command("rotate")
@key_id_argument
@pass_session
def keys_rotate(session: AdminSession, key_id: str) -> None:
    """Give a key a new secret; the old one stops working at once."""
    show_secret(session, session.call("POST", f"/admin/keys/{_segment(key_id)}/rotate"))


USAGE_COLUMNS: Sequence[Column] = (
    ("ID", field("id")), ("NAME", field("name")), ("STATUS", field("status")),
    ("USES", field("usage_count")), ("LAST USED", field("last_used_at")),
    ("SPENT", field("spent")), ("BUDGET", field("budget")),
)


@keys.command("usage")
@click.option("--limit", type=click.IntRange(1, 100), help="At most this many keys (default 20).")
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many keys.")
@click.option("--sort", type=click.Choice(("usage", "last_used")),
              help="Most used first, or most recently used first.")
@click.option("--active/--inactive", default=None, help="Only active, or only inactive keys.")
@since_option("keys used")
@pass_session
def keys_usage(session: AdminSession, limit: int | None, offset: int | None, sort: str | None,
               active: bool | None, since: str | None) -> None:
    """How much each key is used."""
    answer = session.call("GET", "/admin/keys/usage", query={
        "limit": limit, "offset": offset, "sort": sort, "active": active, "since": since})
    session.show(answer, lambda a: columns(a.get("data") or [], USAGE_COLUMNS, "No keys match.")
                 + "\n\n" + fields(a.get("summary") or {}))


# --- config -------------------------------------------------------------------------------


@admin.group()
def config() -> None:
    """Read, replace, roll back and reset the configuration in force."""


@config.command("get")
@pass_session
def config_get(session: AdminSession) -> None:
    """Print the config in force (YAML in table output; provider keys masked)."""
    session.show(session.call("GET", "/admin/config"), to_yaml)


HISTORY_COLUMNS: Sequence[Column] = (
    ("VERSION", field("version")), ("CREATED", field("created_at")),
    ("ACTION", field("action")), ("ACTOR", field("actor")),
    ("ROLLED BACK FROM", field("rolled_back_from")),
)


@config.command("history")
@click.option("--limit", type=click.IntRange(1, 100), help="At most this many versions (default 20).")
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many of the newest versions.")
@pass_session
def config_history(session: AdminSession, limit: int | None, offset: int | None) -> None:
    """List the config's versions, newest first."""
    answer = session.call("GET", "/admin/config/history", query={"limit": limit, "offset": offset})
    session.show(answer, lambda a: columns(a.get("data") or [], HISTORY_COLUMNS, "No history.")
                 + f"\n\n{(a.get('summary') or {}).get('total_versions', '?')} versions in total")


def read_config_file(stream: io.TextIOBase) -> dict[str, Any]:
    """A config file's contents (JSON or YAML) as a mapping, or a usage error saying why not."""
    name = getattr(stream, "name", "-")
    text = stream.read()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = YAML(typ="safe", pure=True).load(text)
        except YAMLError as exc:
            raise click.BadParameter(f"{name} is neither JSON nor YAML: {exc}",
                                     param_hint="'--file'") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{name} must hold a mapping, the same shape as a config file",
                                 param_hint="'--file'")
    return data


@config.command("set")
@click.option("--file", "-f", "stream", required=True, type=click.File("r"),
              help="A config file, YAML or JSON (- reads stdin).")
@pass_session
def config_set(session: AdminSession, stream: io.TextIOBase) -> None:
    """Replace the config in force; it is validated first and applied without dropping
    requests in flight."""
    answer = session.call("PUT", "/admin/config", body=read_config_file(stream))
    session.show(answer, lambda a: f"Config applied: now version {a.get('version')}.")


@config.command("rollback")
@click.argument("version", type=click.IntRange(min=1))
@pass_session
def config_rollback(session: AdminSession, version: int) -> None:
    """Bring back an earlier VERSION (see `config history`), as a new version."""
    answer = session.call("POST", f"/admin/config/rollback/{version}")
    session.show(answer, lambda a: f"Rolled back to version {a.get('rolled_back_to')}: "
                                   f"now version {a.get('version')}.")


@config.command("reset")
@confirm_option
@pass_session
def config_reset(session: AdminSession, yes: bool) -> None:
    """Go back to the config the gateway started with."""
    confirm(yes, "Replace the config in force with the one the gateway started with?")
    answer = session.call("DELETE", "/admin/config")
    session.show(answer, lambda a: f"Config reset to the startup one: now version {a.get('version')}.")


# --- logs ---------------------------------------------------------------------------------


@admin.group()
def logs() -> None:
    """Read, summarise and delete the request logs."""


LOG_COLUMNS: Sequence[Column] = (
    ("TIME", field("created_at")), ("PROVIDER", field("provider")), ("MODEL", field("model")),
    ("STAGE", field("stage")), ("STATUS", field("status")), ("MS", field("latency_ms")),
    ("TOKENS", field("total_tokens")), ("COST", field("cost")), ("ERROR", field("error_message")),
)


@logs.command("list")
@click.option("--limit", type=click.IntRange(1, 200), help="At most this many entries (default 50).")
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many of the newest entries.")
@log_filters
@click.option("--key-id", help="Only requests made with this key.")
@since_option("entries")
@pass_session
def logs_list(session: AdminSession, limit: int | None, offset: int | None,
              provider: str | None, model: str | None, stage: str | None,
              key_id: str | None, since: str | None) -> None:
    """List request-log entries, newest first."""
    answer = session.call("GET", "/admin/logs", query={
        "limit": limit, "offset": offset, "provider": provider, "model": model, "stage": stage,
        "key_id": key_id, "since": since})
    session.show(answer, lambda a: columns(a.get("data") or [], LOG_COLUMNS, "No log entries.")
                 + "\n\n" + fields(a.get("summary") or {}))


def breakdown(title: str, groups: Mapping[str, Any]) -> str:
    """One ``by_*`` section of the stats: a row per group, a column per figure."""
    rows = [{"": name, **(value if isinstance(value, dict) else {"entries": value})}
            for name, value in groups.items()]
    names = list(dict.fromkeys(k for row in rows for k in row if k))
    spec = [(title.upper(), field("")), *((n.upper().replace("_", " "), field(n)) for n in names)]
    return columns(rows, spec, f"No entries by {title}.")


@logs.command("stats")
@click.option("--limit", type=click.IntRange(1, 100), help="At most this many providers and models.")
@log_filters
@since_option("entries")
@pass_session
def logs_stats(session: AdminSession, limit: int | None, provider: str | None, model: str | None,
               stage: str | None, since: str | None) -> None:
    """Totals of the request logs, by stage, provider and model."""
    answer = session.call("GET", "/admin/logs/stats", query={
        "limit": limit, "provider": provider, "model": model, "stage": stage, "since": since})
    session.show(answer, lambda a: "\n\n".join([
        fields(a.get("summary") or {}),
        *(breakdown(name, a.get(f"by_{name}") or {}) for name in ("stage", "provider", "model"))]))


@logs.command("delete")
@click.option("--before", required=True, type=MOMENT,
              help="Delete entries older than this: RFC 3339, or a duration ago (720h).")
@log_filters
@confirm_option
@pass_session
def logs_delete(session: AdminSession, before: str, provider: str | None, model: str | None,
                stage: str | None, yes: bool) -> None:
    """Delete request-log entries older than --before."""
    confirm(yes, f"Delete the matching log entries older than {before}?")
    answer = session.call("DELETE", "/admin/logs", query={
        "before": before, "provider": provider, "model": model, "stage": stage})
    session.show(answer, lambda a: f"Deleted {a.get('deleted')} log entries.")


# --- providers, health, dashboard ---------------------------------------------------------


@admin.group()
def providers() -> None:
    """The providers the gateway has set up."""


PROVIDER_COLUMNS: Sequence[Column] = (
    ("NAME", field("name")), ("TYPE", field("type")),
    ("MODELS", lambda row: [m.get("id") for m in row.get("models") or []]),
)


@providers.command("list")
@pass_session
def providers_list(session: AdminSession) -> None:
    """List providers and their models."""
    session.show(session.call("GET", "/admin/providers"),
                 lambda rows: columns(rows, PROVIDER_COLUMNS, "No providers."))


HEALTH_COLUMNS: Sequence[Column] = (
    ("PROVIDER", field("name")), ("STATUS", field("status")), ("MODELS", field("models")),
    ("BREAKER", field("breaker")), ("MESSAGE", field("message")),
)


@admin.command()
@pass_session
def health(session: AdminSession) -> None:
    """Whether each provider is up, and its circuit breaker's state."""
    session.show(session.call("GET", "/admin/health"),
                 lambda a: f"Status: {a.get('status')}\n\n"
                           + columns(a.get("providers") or [], HEALTH_COLUMNS, "No providers."))


@admin.command()
@pass_session
def dashboard(session: AdminSession) -> None:
    """One-screen summary: providers, keys, request logs, config version."""
    session.show(session.call("GET", "/admin/dashboard"), fields)
