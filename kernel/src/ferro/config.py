"""The configuration file: JSON or YAML, in Ferro's shape, structured with attrs + cattrs.

A Ferro config file (``strategy``, ``targets``, ``plugins``, ``aliases``) loads unchanged;
``providers`` and ``server`` extend it. Every error names the key's path and the file's
line: ``gateway.yaml:7: targets[0].weight: must not be negative (got -1)``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import is_mutable_sequence, list_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from ferro.errors import ConfigError

__all__ = [
    "DEFAULT_RETRY_ON",
    "BreakerConfig",
    "CacheConfig",
    "Condition",
    "Config",
    "ConfigSource",
    "Duration",
    "LimitsConfig",
    "LoggingConfig",
    "OptionError",
    "PluginConfig",
    "PriceConfig",
    "ProviderSettings",
    "RetryConfig",
    "ServerConfig",
    "StorageConfig",
    "StoreConfig",
    "StrategyConfig",
    "TargetConfig",
    "TimeoutConfig",
    "build_options",
    "load_config",
    "parse_config",
    "structure",
]

T = TypeVar("T")

STAGES = ("before_request", "after_request", "on_error")


class Duration(float):
    """Seconds. Written in a config as a number of seconds or a Go-style duration string
    (``"30s"``, ``"100ms"``, ``"1m30s"``)."""

    _PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
    _UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, bool):
            raise TypeError(f"expected a duration such as 30s or 0.5, got {value!r}")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str):
            text = value.strip()
            parts = cls._PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"expected a duration such as 30s, 250ms or 1m30s, got {value!r}")
            seconds = sum(float(n) * cls._UNITS[u] for n, u in parts)
        else:
            raise TypeError(f"expected a duration such as 30s or 0.5, got {value!r}")
        if seconds < 0:
            raise ValueError(f"must not be negative (got {value!r})")
        return cls(seconds)


class FieldError(ValueError):
    """A bad value, raised by a validator; carries the field name so the error can be located."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _non_negative(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise FieldError(attr.name, f"must not be negative (got {value:g})")


def _positive(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise FieldError(attr.name, f"must be positive (got {value:g})")


def _one_of(*choices: str):
    def check(_inst: Any, attr: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise FieldError(attr.name, f"must be one of {', '.join(choices)} (got {value!r})")

    return check


def _port(_inst: Any, attr: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= 65535:
        raise FieldError(attr.name, f"must be a port number, 0 to 65535 (got {value})")


def _fraction(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if not 0 <= value <= 1:
        raise FieldError(attr.name, f"must be between 0 and 1 (got {value:g})")


def _at_least_one(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value < 1:
        raise FieldError(attr.name, f"must be at least 1 (got {value:g})")


def _statuses(_inst: Any, attr: attrs.Attribute, value: list[int]) -> None:
    for status in value:
        if not 100 <= status <= 599:
            raise FieldError(attr.name, f"must list HTTP status codes (got {status})")


class OptionError(ValueError):
    """Raised by a plugin class (a strategy, say) that finds its config wrong: ``keys`` is
    the config path at fault (``("strategy", "conditions", 2, "key")``), so the error names
    the file line."""

    def __init__(self, keys: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys
        self.message = message


@attrs.define
class Condition:
    """A conditional-routing rule, in the Go version's shape ``{key, value, target_key}``
    plus the keys newer rules need. Which ``key`` values exist, and what they match, is
    the conditional strategy's to say (it checks them when it is built)."""

    key: str
    value: str = ""
    target_key: str = ""
    #: The header a ``header`` rule looks at.
    header: str = ""
    #: The text a ``prompt_*`` rule looks at: the last user message, or every message.
    scope: str = attrs.field(default="last_user", validator=_one_of("last_user", "all"))
    case_sensitive: bool = False
    #: The model to ask the target for instead of the request's (a code model, say).
    model: str = ""


@attrs.define
class StrategyConfig:
    mode: str = "single"
    conditions: list[Condition] = attrs.Factory(list)
    #: Settings for the strategy plugin itself, checked by it.
    options: dict[str, Any] = attrs.Factory(dict)


#: Upstream statuses retried on the same target unless ``retry_on`` says otherwise.
DEFAULT_RETRY_ON = (429, 500, 502, 503, 504)


@attrs.define
class RetryConfig:
    """A target's retry policy. Calls that time out or cannot connect are retried too;
    a client's own mistake (a 400) never is. The wait before retry ``n`` is ``backoff x
    factor^(n-1)``, capped at ``max_backoff``, minus up to ``jitter`` of it at random; an
    upstream's ``Retry-After`` replaces it when it is within the cap, and moves on to the
    next target at once when it is longer."""

    attempts: int = attrs.field(default=1, validator=_positive)
    backoff: Duration = Duration(0.1)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    max_backoff: Duration = Duration(5.0)
    jitter: float = attrs.field(default=0.5, validator=_fraction)
    retry_on: list[int] = attrs.field(factory=lambda: list(DEFAULT_RETRY_ON),
                                      validator=_statuses)


@attrs.define
class TimeoutConfig:
    """A target's time limits, each ending in a 504: to connect, to the first byte of the
    answer (a stream's first chunk), and for the whole call (a stream's whole length).
    Written as a mapping, or as one duration meaning ``total``. Unset limits fall back to
    the provider's own ``timeout``."""

    connect: Duration | None = None
    first_byte: Duration | None = None
    total: Duration | None = None


@attrs.define
class PriceConfig:
    """Prices in US dollars per million tokens (see :mod:`ferro.pricing`); a config entry
    overrides the fields it sets on the shipped entry of the same name."""

    input: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        _non_negative))
    output: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        _non_negative))
    cached_input: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        _non_negative))
    cache_write: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        _non_negative))
    embedding: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        _non_negative))
    #: A quality tier for cost-optimized routing: economy, standard or premium.
    tier: str | None = attrs.field(default=None, validator=attrs.validators.optional(
        _one_of("economy", "standard", "premium")))


@attrs.define
class BreakerConfig:
    failure_threshold: int = attrs.field(default=5, validator=_positive)
    success_threshold: int = attrs.field(default=1, validator=_positive)
    timeout: Duration = Duration(30.0)
    #: How many trial requests a half-open breaker lets through at once.
    half_open_max_requests: int = attrs.field(default=1, validator=_positive)


@attrs.define
class TargetConfig:
    virtual_key: str
    weight: float = attrs.field(default=1.0, validator=_non_negative)
    retry: RetryConfig | None = None
    circuit_breaker: BreakerConfig | None = None
    timeout: TimeoutConfig | None = None


@attrs.define
class PluginConfig:
    name: str
    type: str = ""
    stage: str = attrs.field(default="before_request", validator=_one_of(*STAGES))
    enabled: bool = True
    config: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class ProviderSettings:
    """One configured provider. Keys not listed here are the provider's own ``options``
    (for example Azure's ``deployment``), checked by the provider class."""

    type: str = ""
    api_key: str | None = None
    base_url: str | None = None
    timeout: Duration = Duration(60.0)
    #: Models served; replaces the provider's default list when given.
    models: list[str] = attrs.Factory(list)
    #: Gateway model name -> upstream model name.
    model_map: dict[str, str] = attrs.Factory(dict)
    headers: dict[str, str] = attrs.Factory(dict)
    options: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=_port)
    cors_origins: list[str] = attrs.Factory(list)
    max_body_size: int = attrs.field(default=10 * 1024 * 1024, validator=_positive)
    #: Bearer keys required on every route but the public ones; empty means no auth.
    api_keys: list[str] = attrs.Factory(list)
    #: On SIGTERM, how long requests and streams in flight may take to finish; then each
    #: is ended (a 503, or a stream's error event) and the process exits.
    shutdown_timeout: Duration = Duration(15.0)
    #: The longest ``X-Ferro-Timeout`` a request may ask for; longer asks are cut to it.
    max_request_timeout: Duration = Duration(600.0)
    #: The ``Host`` names served (a port is ignored; ``"*"`` serves any). Empty: the loopback
    #: names when ``host`` is a loopback address, any name otherwise.
    allowed_hosts: list[str] = attrs.Factory(list)
    #: Open client connections at most (kept below the open-file limit); past it, a new
    #: connection is answered 503 at once.
    max_connections: int = attrs.field(default=1024, validator=_positive)
    #: The time a client has to send a whole request head, from connecting (or from the
    #: head's first byte on a kept-alive connection).
    header_timeout: Duration = attrs.field(default=Duration(10.0), validator=_positive)
    #: The time a client has to send a whole request body, once its head has arrived (408).
    body_timeout: Duration = attrs.field(default=Duration(30.0), validator=_positive)
    #: How long a kept-alive connection may wait idle for its next request.
    keepalive_timeout: Duration = attrs.field(default=Duration(75.0), validator=_positive)
    #: Whether ``/health/ready`` answers without an API key when keys are configured.
    public_readiness: bool = True
    #: Whether ``/v1/*`` is answered without an API key even when stored keys exist (a key
    #: that is sent is still checked). Off by default: once a key exists, callers need one.
    open_inference: bool = False


@attrs.define
class LimitsConfig:
    """What one request may cost the gateway, each limit answered in the error schema: how
    much an upstream may send (a whole answer, one stream event, a whole stream), how long
    a stream may run, and how many messages or inputs a request may carry."""

    #: Bytes of a whole (non-stream) upstream answer; past it, a 502 at once, unbuffered.
    max_response_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_positive)
    #: Bytes of one event of an upstream stream (an SSE frame, an NDJSON line).
    max_frame_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_positive)
    #: Bytes of a whole upstream stream; past either stream limit the stream ends with an
    #: error event and ``[DONE]``.
    max_stream_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_positive)
    #: How long a stream may run, from the call to its last byte.
    max_stream_duration: Duration = attrs.field(default=Duration(1800.0), validator=_positive)
    #: Messages in a chat request.
    max_messages: int = attrs.field(default=10_000, validator=_positive)
    #: Inputs of an embeddings request, and prompts of a legacy completions request.
    max_inputs: int = attrs.field(default=2048, validator=_positive)


@attrs.define
class CacheConfig:
    """The response cache: a backend registered through ``register_caches`` (none when
    empty), how long an answer is kept, and the backend's own ``options``."""

    backend: str = ""
    ttl: Duration = Duration(300.0)
    options: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class StoreConfig:
    """One store: a backend registered through ``register_storage`` (``sqlite``,
    ``postgres``; ``memory`` is SQLite in memory) and its DSN (a file path or URL). Empty
    means the matching environment variable's, else none (or, under ``ferrogw serve``,
    SQLite in ``storage.data_dir``)."""

    backend: str = ""
    dsn: str = ""
    options: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class StorageConfig:
    """Where API keys, config history and request logs are kept."""

    #: The embedded default's directory (``FERRO_DATA_DIR``; ``./ferro-data`` under serve).
    data_dir: str = ""
    keys: StoreConfig = attrs.Factory(StoreConfig)
    config: StoreConfig = attrs.Factory(StoreConfig)
    request_logs: StoreConfig = attrs.Factory(StoreConfig)


@attrs.define
class LoggingConfig:
    """Log level and format (``LOG_LEVEL`` and ``LOG_FORMAT`` override them), and the one
    line per request (logger ``ferro.access``)."""

    level: str = attrs.field(default="info", validator=_one_of(
        "debug", "info", "warn", "warning", "error", "critical"))
    format: str = attrs.field(default="json", validator=_one_of("json", "text"))
    requests: bool = True


@attrs.define
class ConfigSource:
    """Where a config came from, to turn a key path into a file line."""

    path: str | None
    tree: Any = None

    def locate(self, keys: tuple[Any, ...]) -> str:
        """``file:line: a.b[0].c`` for the deepest key of ``keys`` found in the file."""
        where = self.path or "<config>"
        line = _line_of(self.tree, keys)
        prefix = f"{where}:{line}" if line else where
        dotted = format_path(keys)
        return f"{prefix}: {dotted}" if dotted else prefix


@attrs.define
class Config:
    strategy: StrategyConfig = attrs.Factory(StrategyConfig)
    targets: list[TargetConfig] = attrs.Factory(list)
    plugins: list[PluginConfig] = attrs.Factory(list)
    aliases: dict[str, str] = attrs.Factory(dict)
    providers: dict[str, ProviderSettings] = attrs.Factory(dict)
    server: ServerConfig = attrs.Factory(ServerConfig)
    cache: CacheConfig = attrs.Factory(CacheConfig)
    limits: LimitsConfig = attrs.Factory(LimitsConfig)
    storage: StorageConfig = attrs.Factory(StorageConfig)
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    #: Price overrides and additions, by ``model``, ``provider/model`` or ``type/model``.
    pricing: dict[str, PriceConfig] = attrs.Factory(dict)
    source: ConfigSource = attrs.field(factory=lambda: ConfigSource(None), eq=False, repr=False)

    def error(self, keys: tuple[Any, ...], message: str) -> ConfigError:
        return ConfigError(f"{self.source.locate(keys)}: {message}")

    def to_dict(self) -> dict[str, Any]:
        data = converter.unstructure(self)
        data.pop("source", None)
        return data


# --- structuring --------------------------------------------------------------------------


def _strict(kind: type | tuple[type, ...], label: str):
    def hook(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got {value!r}")
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {type(value).__name__} {value!r}")
        return value

    return hook


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(float, lambda v, _t: float(_strict((int, float), "a number")(v, _t)))
    conv.register_structure_hook(Duration, lambda v, _t: Duration.parse(v))
    conv.register_unstructure_hook(Duration, float)
    conv.register_structure_hook(Any, lambda v, _t: v)
    timeouts = make_dict_structure_fn(TimeoutConfig, conv)
    conv.register_structure_hook(TimeoutConfig, lambda v, t: timeouts(v, t) if isinstance(
        v, Mapping) else TimeoutConfig(total=Duration.parse(v)))

    def lists(kind: Any) -> Any:
        """A list is a list: a string is not read as a list of its characters."""
        items = list_structure_factory(kind, conv)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
            return items(value, _type)

        return hook

    conv.register_structure_hook_factory(is_mutable_sequence, lists)
    known = {a.name for a in attrs.fields(ProviderSettings)} - {"options"}
    plain = make_dict_structure_fn(ProviderSettings, conv, options=override(omit=True))

    def structure_provider(value: Any, _type: Any) -> ProviderSettings:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping, got {type(value).__name__}")
        settings = plain({k: v for k, v in value.items() if k in known}, ProviderSettings)
        settings.options = {k: v for k, v in value.items() if k not in known}
        return settings

    conv.register_structure_hook(ProviderSettings, structure_provider)
    conv.register_structure_hook(
        Config, make_dict_structure_fn(Config, conv, source=override(omit=True))
    )
    conv.register_unstructure_hook(
        ProviderSettings,
        lambda s: {
            **{a.name: conv.unstructure(getattr(s, a.name)) for a in attrs.fields(ProviderSettings)
               if a.name not in ("options", "api_key")},
            "api_key": "***" if s.api_key else None,
            **s.options,
        },
    )
    return conv


converter = _make_converter()


def structure(data: Any, cls: type[T], source: ConfigSource, at: tuple[Any, ...] = ()) -> T:
    """Structure ``data`` into ``cls``; raise one :class:`ConfigError` listing every problem,
    each located by key path (under ``at``) and file line."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        problems = list(_problems(exc, at))
        lines = [f"{source.locate(keys)}: {msg}" for keys, msg in problems]
        raise ConfigError("\n".join(lines)) from None


def build_options(cls: type, options: Mapping[str, Any], source: ConfigSource,
                  at: tuple[Any, ...]) -> Any:
    """A plugin class's options: an instance of its attrs ``Options`` class when it declares
    one (errors located in the config file), else the mapping as it is. Every plugin kind
    (provider, strategy, plugin, cache, storage) declares its options this way."""
    options_cls = getattr(cls, "Options", None)
    if options_cls is None:
        return dict(options)
    if isinstance(options, options_cls):
        return options
    return structure(dict(options), options_cls, source, at)


def _problems(exc: BaseException, path: tuple[Any, ...]):
    if isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(a.name for a in attrs.fields(exc.cl) if a.name != "source")
        for key in sorted(exc.extra_fields):
            yield (*path, key), f"unknown key {key!r} (expected one of: {known})"
        return
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            yield from _problems(sub, path + _note_keys(sub))
        return
    if isinstance(exc, FieldError):
        yield (*path, exc.field), str(exc)
        return
    if isinstance(exc, KeyError):
        yield path, "this key is required"
        return
    field = _attrs_validator_field(exc)
    if field is not None:
        yield (*path, field), str(exc.args[0])
        return
    yield path, str(exc)


_ATTRS_MESSAGE = re.compile(r"^(?:Length of )?'(\w+)'")


def _attrs_validator_field(exc: BaseException) -> str | None:
    """The attribute an attrs built-in validator complained about (``in_`` passes the
    Attribute; ``ge``, ``min_len`` and the like name it at the start of the message)."""
    if not isinstance(exc, ValueError | TypeError) or not exc.args:
        return None
    if len(exc.args) > 1 and isinstance(exc.args[1], attrs.Attribute):
        return exc.args[1].name
    match = _ATTRS_MESSAGE.match(str(exc.args[0]))
    return match.group(1) if match else None


def _note_keys(exc: BaseException) -> tuple[Any, ...]:
    for note in getattr(exc, "__notes__", ()):
        if hasattr(note, "name"):
            return (note.name,)
        if hasattr(note, "index"):
            return (note.index,)
    return ()


def format_path(keys: tuple[Any, ...]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _line_of(tree: Any, keys: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest key of ``keys`` present in a ruamel tree."""
    line = None
    node = tree
    for key in keys:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, Mapping) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


# --- loading ------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, source: ConfigSource, env: Mapping[str, str], path=()) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string, keeping ruamel's line info."""
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in env:
                return env[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigError(
                f"{source.locate(path)}: environment variable {m.group(1)} is not set "
                f"(write ${{{m.group(1)}:-default}} to give a default)"
            )

        return _VAR.sub(sub, node) if "${" in node else node
    if isinstance(node, Mapping):
        for key in list(node):
            node[key] = _interpolate(node[key], source, env, (*path, key))
        return node
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _interpolate(item, source, env, (*path, i))
        return node
    return node


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, float):  # ruamel's ScalarFloat, which orjson refuses to encode
        return float(node)
    return node


def parse_config(
    text: str, path: str | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Parse config text (JSON or YAML, chosen by ``path``'s extension; YAML when unknown)."""
    env = os.environ if env is None else env
    source = ConfigSource(path)
    suffix = Path(path).suffix.lower() if path else ".yaml"
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"unsupported config file extension {suffix!r}: use .json, .yaml, or .yml")
    if suffix == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path or '<config>'}{line}: invalid YAML: {exc.problem}") from None
    if tree is None:
        tree = {}
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{path or '<config>'}: the config must be a mapping at the top level")
    source.tree = tree
    data = _plain(_interpolate(tree, source, env))
    config = structure(data, Config, source)
    config.source = source
    if not config.strategy.mode:  # Ferro configs treat an empty mode as single
        config.strategy.mode = "single"
    _check(config)
    return config


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from None
    return parse_config(text, str(p), env)


def _check(config: Config) -> None:
    """Rules that span fields (the ones that need installed plugins are checked at build)."""
    problems: list[str] = []
    loc = config.source.locate
    tree = config.source.tree
    if isinstance(tree, Mapping) and "targets" in tree and not config.targets:
        problems.append(f"{loc(('targets',))}: at least one target is required (leave "
                        "'targets' out to route over every configured provider)")
    for name, target in config.aliases.items():
        if not name.strip():
            problems.append(f"{loc(('aliases',))}: an alias name must not be empty")
        elif not target.strip():
            problems.append(f"{loc(('aliases', name))}: alias {name!r} has an empty target")
        elif target == name:
            problems.append(f"{loc(('aliases', name))}: alias {name!r} refers to itself")
        elif target in config.aliases:
            problems.append(
                f"{loc(('aliases', name))}: alias {name!r} points at another alias ({target!r}); "
                "point it at a model"
            )
    if problems:
        raise ConfigError("\n".join(problems))
