"""Layered configuration: defaults < TOML file < environment (DISPATCHER_*, ``__`` nests).

Secrets never live in the TOML: a provider names the environment variable or the file
(a Kubernetes secret mount) that holds its key, and the key is read once at start-up.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.errors import (
    Sources,
    describe_source,
    format_env_parse_error,
    format_errors,
)
from dispatcher.core.jobs import JobRules
from dispatcher.core.policy import CampaignMap, PolicyConfig
from dispatcher.core.timing import CodeRule, Timing
from dispatcher.providers import ProviderConfig

DEFAULT_CONFIG_PATH = "config/dispatcher.toml"


class ConfigError(Exception):
    """A configuration that cannot run; the message names the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedisConfig(_Strict):
    """``[redis]``: where the dispatcher's state lives and how to reach it (docs/redis.md).

    ``mode`` picks the client: ``standalone`` (one server at ``url``), ``cluster`` (``url``
    names any node; the others are discovered) or ``sentinel`` (``sentinels`` are asked
    where the master ``master_name`` is, again after every failover). TLS: a ``rediss://``
    url, or ``tls = true``; the ``tls_*`` files apply in every mode.
    """

    mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    url: str = "redis://localhost:6379/0"
    sentinels: list[str] = Field(default_factory=list)
    master_name: str = ""
    db: int = Field(default=0, ge=0, description="sentinel mode: the database number")
    namespace: str = Field(default="dispatcher", pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    socket_timeout_s: float = Field(default=10.0, gt=0)
    block_ms: int = Field(default=2000, ge=1)
    pool_timeout_s: float = Field(
        default=20.0, gt=0,
        description="how long a command waits for a free pooled connection before failing")
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    sentinel_password_env: str | None = None
    sentinel_password_file: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True
    wait_replicas: int = Field(
        default=0, ge=0,
        description="replicas that must acknowledge a grant (WAIT) before its requests leave")
    wait_timeout_ms: int = Field(
        default=1000, ge=1, description="how long a grant waits for those acknowledgements")

    @model_validator(mode="after")
    def _block_shorter_than_timeout(self) -> RedisConfig:
        if self.block_ms / 1000 >= self.socket_timeout_s:
            raise ValueError(
                f"redis.block_ms ({self.block_ms}) must be shorter than "
                f"redis.socket_timeout_s ({self.socket_timeout_s} s)"
            )
        return self

    @model_validator(mode="after")
    def _mode_needs(self) -> RedisConfig:
        if self.mode == "sentinel":
            if not self.sentinels or not self.master_name:
                raise ValueError('redis.mode = "sentinel" needs redis.sentinels '
                                 '(["host:port", ...]) and redis.master_name')
            for sentinel in self.sentinels:
                host, _, port = sentinel.rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"redis.sentinels: expected host:port, got {sentinel!r}")
        if self.mode == "cluster":
            if self.url.startswith("unix://"):
                raise ValueError("redis.url: a cluster node is reached over TCP, not unix://")
            if urlsplit(self.url).path.strip("/") not in ("", "0"):
                raise ValueError("redis.url: a cluster has database 0 only")
            if self.wait_replicas:
                raise ValueError("redis.wait_replicas: not supported in cluster mode (use a "
                                 "master with replicas, standalone or sentinel)")
        return self

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(h.strip("[]"), int(p)) for h, _, p in (s.rpartition(":")
                                                         for s in self.sentinels)]


class WorkerConfig(_Strict):
    concurrency: int = Field(
        default=50, ge=1, le=500,
        description="dials (and as many call visits) in flight per process, at most 500: one "
                    "asyncio process is CPU-bound (TLS, JSON) beyond a few hundred, and its "
                    "Redis pool (2 x concurrency + 20) must leave room under Redis's "
                    "maxclients for every other process; scale out with more processes")
    claim_idle_s: float = Field(default=15.0, gt=0)
    heartbeat_s: float = Field(default=1.0, gt=0)
    dead_after_s: float = Field(default=3.0, gt=0)
    intake_max_ready: int = Field(default=100_000, ge=100)
    promote_interval_s: float = Field(default=0.2, gt=0)
    dedupe_ttl_s: int = Field(default=7 * 86400, ge=60)
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # several processes on one port (SO_REUSEPORT) only when asked: by mistake, two workers
    # answering /readyz and /metrics at random for each other go unnoticed
    http_share_port: bool = False

    @model_validator(mode="after")
    def _heartbeat_below_idle(self) -> WorkerConfig:
        if self.heartbeat_s * 2 > self.claim_idle_s:
            raise ValueError(
                f"worker.heartbeat_s ({self.heartbeat_s}) must be at most half of "
                f"worker.claim_idle_s ({self.claim_idle_s})"
            )
        if self.heartbeat_s * 2 > self.dead_after_s:
            raise ValueError(
                f"worker.heartbeat_s ({self.heartbeat_s}) must be at most half of "
                f"worker.dead_after_s ({self.dead_after_s})"
            )
        return self


class CodeRetry(_Strict):
    """``[retry.codes.<provider error code>]``: retry settings for one error code."""

    base_delay_s: float | None = Field(default=None, gt=0)
    max_delay_s: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)


class RetryConfig(_Strict):
    max_attempts: int = Field(default=8, ge=1)
    base_delay_s: float = Field(default=1.0, gt=0)
    max_delay_s: float = Field(default=30.0, gt=0)
    max_defer_s: float = Field(default=86400.0, gt=0)
    halt_probe_s: float = Field(default=30.0, gt=0)
    halt_probe_max_s: float = Field(default=600.0, gt=0)
    codes: dict[str, CodeRetry] = Field(default_factory=dict)


class ResultsConfig(_Strict):
    """The results stream: how much of it Redis keeps for consumers (docs/redis.md).

    Entries beyond ``maxlen`` (the oldest) and, when ``max_age_s`` is set, entries older than
    that are trimmed; a consumer that falls further behind loses results.
    """

    maxlen: int = Field(default=1_000_000, ge=1000)
    max_age_s: float | None = Field(
        default=None, ge=60,
        description="trim results older than this (XTRIM MINID); none: by count only")


class JobsConfig(_Strict):
    """``[jobs]``: what the deployment accepts beyond the contract's fixed rules."""

    max_schedule_ahead_s: float = Field(
        default=366 * 86400.0, ge=60, allow_inf_nan=False,
        description="a not_before or expires_at further ahead than this is refused")


class TrackingConfig(_Strict):
    track_calls: bool = True
    poll_schedule_s: list[float] = Field(default_factory=lambda: [5.0, 10.0, 20.0, 30.0])
    webhook_poll_s: float = Field(default=60.0, gt=0)
    max_track_s: float = Field(default=4 * 3600.0, gt=0)
    slot_lease_s: float = Field(default=180.0, gt=0)
    visit_lease_s: float = Field(default=30.0, gt=0)
    reconcile_window_s: float = Field(default=900.0, gt=0)

    @field_validator("poll_schedule_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not value or any(x <= 0 for x in value):
            raise ValueError("expected a non-empty list of positive seconds")
        return value


class OptoutConfig(_Strict):
    """``[optout]``: the workers' ``POST /v1/optout`` for a voice agent's opt-out tool call."""

    token_file: str | None = Field(
        default=None, description="a file holding the bearer token; none: the endpoint is off")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHER_", env_nested_delimiter="__", extra="forbid"
    )

    redis: RedisConfig = Field(default_factory=RedisConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    campaigns: CampaignMap = Field(default_factory=dict)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    optout: OptoutConfig = Field(default_factory=OptoutConfig)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_path())
        return (init_settings, env_settings, toml)

    def job_rules(self) -> JobRules:
        """How jobs are checked: the contract's rules with this deployment's settings."""
        return JobRules(number_check=self.policy.number_check,
                        max_schedule_ahead_s=self.jobs.max_schedule_ahead_s)

    def timing(self) -> Timing:
        retry, tracking = self.retry, self.tracking
        return Timing(
            base_delay_s=retry.base_delay_s, max_delay_s=retry.max_delay_s,
            max_attempts=retry.max_attempts, max_defer_s=retry.max_defer_s,
            halt_probe_s=retry.halt_probe_s, halt_probe_max_s=retry.halt_probe_max_s,
            poll_schedule_s=tuple(tracking.poll_schedule_s), webhook_poll_s=tracking.webhook_poll_s,
            max_track_s=tracking.max_track_s,
            codes={k: CodeRule(v.base_delay_s, v.max_delay_s, v.max_attempts)
                   for k, v in retry.codes.items()})


def read_secret(env_name: str | None, file_name: str | None, what: str) -> str | None:
    """Read a secret from the environment or a mounted file; the value itself is never logged."""
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return value.strip()
        if not file_name:
            raise ConfigError(f"{what}: environment variable {env_name} is not set or empty")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {file_name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{what}: cannot read {file_name}: not UTF-8 text") from None
    return None


_explicit_path: list[str] = []


def _config_path() -> str:
    if _explicit_path:
        return _explicit_path[-1]
    return os.environ.get("DISPATCHER_CONFIG", DEFAULT_CONFIG_PATH)


def load_settings(path: str | None = None, **overrides: Any) -> Settings:
    """Load and validate; raise ConfigError with every bad key named.

    ``path`` wins over ``DISPATCHER_CONFIG``, which wins over ``config/dispatcher.toml``
    (used only when present).
    """
    if path is not None:
        _explicit_path.append(path)
    try:
        return _load(overrides)
    finally:
        if path is not None:
            _explicit_path.pop()


def _sources(cfg_path: str, overrides: dict[str, Any]) -> Sources:
    """What each layer holds, to say where a bad value came from."""
    try:
        with open(cfg_path, "rb") as file:
            toml: dict[str, Any] = tomllib.load(file)
    except (OSError, ValueError):
        toml = {}
    prefix = str(Settings.model_config.get("env_prefix") or "")
    delim = str(Settings.model_config.get("env_nested_delimiter") or "__")
    return Sources(cfg_path, toml, dict(os.environ), overrides, prefix, delim)


def _load(overrides: dict[str, Any]) -> Settings:
    cfg_path = _config_path()
    explicit = bool(_explicit_path) or "DISPATCHER_CONFIG" in os.environ
    if explicit and not Path(cfg_path).is_file():
        raise ConfigError(f"config file: no such file: {cfg_path}")
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, Settings, _sources(cfg_path, overrides))) from None
    except SettingsError as exc:  # an environment value that should be JSON is not
        raise ConfigError(
            format_env_parse_error(str(exc), Settings, _sources(cfg_path, overrides))) from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"{cfg_path}: {exc}") from None
    problems = _provider_problems(settings)
    if problems:
        src = _sources(cfg_path, overrides)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(
            f"{what}; {describe_source(loc, src, table=True)}" for loc, what in problems))
    return settings


def _provider_problems(settings: Settings) -> list[tuple[tuple[str, str], str]]:
    problems = []
    for name, prov in settings.providers.items():
        if not name.replace("-", "").replace("_", "").isalnum():
            problems.append((("providers", name),
                             f"providers.{name}: name must be letters, digits, - or _"))
        if not prov.api_key_env and not prov.api_key_file:
            problems.append((("providers", name),
                             f"providers.{name}: set api_key_env or api_key_file"))
    return problems


# -- before starting: something to run, and every secret readable ---------------------------
def check_runnable(settings: Settings) -> None:
    """Refuse to start a worker that has no provider to dial through."""
    if not settings.providers:
        raise ConfigError(
            "no providers configured: add a [providers.NAME] table with kind, base_url and "
            "api_key_env or api_key_file to the configuration file, or set "
            "DISPATCHER_PROVIDERS__NAME__KIND, ..._BASE_URL and ..._API_KEY_ENV")


_REQUIRED_SECRETS = frozenset({"api_key"})
"""Secrets that must be configured when their table exists; others are optional."""


def _secret_refs(model: BaseModel, path: str) -> Iterator[tuple[str, str | None, str | None]]:
    """Every ``X_env`` / ``X_file`` field pair, at any depth: (dotted name of X, env, file)."""
    fields = type(model).model_fields
    for name in fields:
        value = getattr(model, name)
        base = name.removesuffix("_env")
        if base != name and f"{base}_file" in fields:
            yield f"{path}{base}", value, getattr(model, f"{base}_file")
        if isinstance(value, dict):
            children = [(f".{k}", v) for k, v in value.items()]
        elif isinstance(value, list | tuple):
            children = [(f"[{i}]", v) for i, v in enumerate(value)]
        else:
            children = [("", value)]
        for suffix, child in children:
            if isinstance(child, BaseModel):
                yield from _secret_refs(child, f"{path}{name}{suffix}.")


def _secret_problem(what: str, env: str | None, file: str | None) -> str | None:
    if not env and not file:
        base = what.rsplit(".", 1)[-1]
        return f"{what}: set {base}_env or {base}_file" if base in _REQUIRED_SECRETS else None
    try:
        value = read_secret(env, file, what)
    except ConfigError as exc:
        return str(exc)
    return None if value else f"{what}: {file} is empty"


# The keys ``dispatcher simulate`` accepts by default, one per dialect
SIMULATOR_DEMO_KEYS = {"telecho": "tel_live_demo_key_0001", "itellico": "sk-demo-itellico-0001"}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _simulator_hints(settings: Settings) -> list[str]:
    """A provider on this machine whose key variable is unset is most likely the simulator
    (config/dispatcher.toml points at it): name the key it accepts."""
    hints = []
    for name, prov in settings.providers.items():
        key = SIMULATOR_DEMO_KEYS.get(str(getattr(prov, "kind", "")))
        env = prov.api_key_env
        if key and env and not os.environ.get(env) \
                and urlsplit(prov.base_url).hostname in _LOOPBACK:
            hints.append(f"providers.{name} is on this machine: if it is `dispatcher "
                         f"simulate`, use its demo key: export {env}={key}")
    return hints


def check_secrets(settings: Settings) -> None:
    """Read every configured secret now, so a missing mount fails the start, not a call."""
    problems = [p for what, env, file in _secret_refs(settings, "")
                if (p := _secret_problem(what, env, file))]
    if problems:
        raise ConfigError("secrets missing or unreadable:\n  " + "\n  ".join(
            problems + _simulator_hints(settings)))
