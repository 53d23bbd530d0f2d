"""The router's YAML configuration: model aliases, their deployments, and routing policies.

The file is named by `LLM_ROUTER_CONFIG`; without it the router serves `BUILTIN_CONFIG_YAML`
(mock deployments only, so `make run` works offline). Every problem is reported as one line
naming the setting, e.g. ``models.default.deployments[1].weight: must be >= 0``; unknown keys
are errors too, so a typo never silently falls back to a default. API keys are never in the
file: a deployment names the environment variable that holds its key (`api_key_env`).

    router:                          # all optional; defaults shown in the dataclasses below
      default_deadline_ms: 120000    # a call without a gRPC deadline gets this one
      retries: {max_attempts: 3, backoff_base_ms: 25, backoff_max_ms: 1000}
      retry_budget: {ratio: 0.1, min_per_second: 1, window_seconds: 10}
      hedging: {enabled: true, percentile: 95, min_delay_ms: 50, max_delay_ms: 2000}
      breaker: {window_seconds: 30, minimum_calls: 10, failure_rate: 0.5, ...}
    models:
      default:                       # the alias callers name in CompletionParams.model
        deployments:
          - id: openai-main          # unique in the file; breaker state is keyed by it
            provider: openai         # openai (or any OpenAI-compatible server), anthropic, mock
            model: gpt-4o-mini
            base_url: https://api.openai.com/v1
            api_key_env: OPENAI_API_KEY
            weight: 3
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from llm_router.errors import ConfigError

__all__ = [
    "BUILTIN_CONFIG_YAML",
    "BreakerConfig",
    "DeploymentConfig",
    "HedgingConfig",
    "MockOptions",
    "ModelConfig",
    "RetryBudgetConfig",
    "RetryConfig",
    "RouterConfig",
    "load_config",
    "load_config_file",
    "parse_config",
]

ProviderName = Literal["openai", "anthropic", "mock"]
_PROVIDERS: Final = ("openai", "anthropic", "mock")
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Served when LLM_ROUTER_CONFIG is not set: offline mock deployments, no keys needed.
BUILTIN_CONFIG_YAML: Final = """\
models:
  default:
    deployments:
      - {id: mock-a, provider: mock, model: mock-1, weight: 1,
         mock: {first_token_ms: 20, inter_token_ms: 5, filler_tokens: 20}}
      - {id: mock-b, provider: mock, model: mock-1, weight: 1,
         mock: {first_token_ms: 20, inter_token_ms: 5, filler_tokens: 20}}
  mock-fast:
    deployments:
      - {id: mock-fast, provider: mock, model: mock-fast}
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MockOptions:
    """How a `mock` deployment answers: deterministic text, configurable pace and failures."""

    latency_ms: float = 0.0
    first_token_ms: float = 0.0
    inter_token_ms: float = 0.0
    #: The reply; `{last}` is replaced by the last user message.
    reply: str = "Mock reply: {last}"
    filler_tokens: int = 0
    #: Probability that a call fails as a 503 would.
    error_rate: float = 0.0
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentConfig:
    """One provider endpoint serving an alias."""

    id: str
    alias: str
    provider: ProviderName
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    #: Resolved from `api_key_env` at load time; never printed.
    api_key: str = field(default="", repr=False)
    weight: int = 1
    #: Bound on a whole attempt (a unary call, or a stream from request to last token).
    timeout_s: float = 60.0
    #: Streams: bound from request to first token.
    first_token_timeout_s: float = 15.0
    #: Streams: bound on the silence between two tokens.
    idle_timeout_s: float = 15.0
    #: Calls in flight on this deployment from one replica; None: unbounded.
    max_concurrency: int | None = None
    input_price_per_million_tokens: float | None = None
    output_price_per_million_tokens: float | None = None
    #: Anthropic requires max_tokens; used when the caller sets none.
    default_max_tokens: int = 4096
    mock: MockOptions | None = None

    @property
    def client_key(self) -> tuple[object, ...]:
        """What the provider client depends on: a reload keeps the client when this is equal."""
        return (self.provider, self.model, self.base_url, self.api_key, self.default_max_tokens,
                self.mock)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    alias: str
    deployments: tuple[DeploymentConfig, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    #: First attempt plus retries (hedges are counted separately).
    max_attempts: int = 3
    backoff_base_s: float = 0.025
    backoff_max_s: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudgetConfig:
    #: Retries and hedges allowed per request, over the window.
    ratio: float = 0.1
    #: Retries always allowed per second of window, however few requests there were.
    min_per_second: float = 1.0
    window_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgingConfig:
    enabled: bool = True
    #: The hedge delay is this percentile of the deployment's latency (streams: time to first
    #: token), clamped to [min_delay, max_delay]; max_delay until there are `min_samples`.
    percentile: float = 95.0
    min_delay_s: float = 0.05
    max_delay_s: float = 2.0
    min_samples: int = 20
    max_hedges: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """A time-based sliding window of `buckets` buckets over `window_s`, shared in Redis."""

    window_s: float = 30.0
    buckets: int = 10
    minimum_calls: int = 10
    #: Open when failures / calls reaches this (with at least minimum_calls in the window).
    failure_rate: float = 0.5
    #: Open after this many failures in a row, whatever the window says (0: never).
    consecutive_failures: int = 5
    #: Open when slow calls / calls reaches this; a call is slow from slow_call_s.
    slow_call_rate: float = 1.0
    slow_call_s: float = 30.0
    #: Open for open_wait_s, times open_wait_multiplier per consecutive trip, up to the max.
    open_wait_s: float = 5.0
    open_wait_max_s: float = 120.0
    open_wait_multiplier: float = 2.0
    #: Probe calls admitted while half-open; all must succeed to close.
    half_open_probes: int = 3
    #: A probe not reported within this long is presumed lost (its router died).
    half_open_timeout_s: float = 120.0
    #: Cool-down after a 429 without Retry-After, and the cap on any Retry-After.
    default_cooldown_s: float = 1.0
    max_cooldown_s: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    models: tuple[ModelConfig, ...]
    retries: RetryConfig = RetryConfig()
    retry_budget: RetryBudgetConfig = RetryBudgetConfig()
    hedging: HedgingConfig = HedgingConfig()
    breaker: BreakerConfig = BreakerConfig()
    default_deadline_s: float = 120.0
    #: Upstream attempts stop this long before the caller's deadline, so none outlives it.
    deadline_margin_s: float = 0.01
    #: Where it came from, for logs: a path or "built-in".
    source: str = "built-in"

    def deployments(self) -> tuple[DeploymentConfig, ...]:
        return tuple(d for model in self.models for d in model.deployments)


# -- loading ------------------------------------------------------------------------------


def load_config_file(path: Path, *, environ: Mapping[str, str] | None = None) -> RouterConfig:
    """Read and validate the file at `path`; ConfigError (naming the file) on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror or error}") from None
    try:
        return parse_config(text, environ=environ, source=str(path))
    except ConfigError as error:
        where = f"{path}: {error.path}" if error.path else str(path)
        raise ConfigError(where, error.problem) from None


def load_config(path: Path | None, *, environ: Mapping[str, str] | None = None) -> RouterConfig:
    """The file at `path`, or the built-in mock configuration when `path` is None."""
    if path is None:
        return parse_config(BUILTIN_CONFIG_YAML, environ=environ, source="built-in")
    return load_config_file(path, environ=environ)


def parse_config(
    text: str, *, environ: Mapping[str, str] | None = None, source: str = "inline"
) -> RouterConfig:
    """Validate YAML `text`; API key variables are looked up in `environ` (default os.environ)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("", f"not valid YAML{where}") from None
    env = os.environ if environ is None else environ
    root = _Node(data, "")
    root.keys({"router", "models"})
    router = root.optional_child("router")
    if router is not None:
        router.keys(
            {
                "retries",
                "retry_budget",
                "hedging",
                "breaker",
                "default_deadline_ms",
                "deadline_margin_ms",
            }
        )
    models_node = root.child("models")
    models = tuple(
        _model(alias, node, env) for alias, node in models_node.mapping_items(min_items=1)
    )
    seen: dict[str, str] = {}
    for model in models:
        for index, deployment in enumerate(model.deployments):
            where = f"models.{model.alias}.deployments[{index}].id"
            if deployment.id in seen:
                raise ConfigError(
                    where, f"{deployment.id!r} is already used by {seen[deployment.id]}"
                )
            seen[deployment.id] = where
    defaults = RouterConfig(models=())
    return RouterConfig(
        models=models,
        retries=_retries(router.optional_child("retries") if router else None),
        retry_budget=_budget(router.optional_child("retry_budget") if router else None),
        hedging=_hedging(router.optional_child("hedging") if router else None),
        breaker=_breaker(router.optional_child("breaker") if router else None),
        default_deadline_s=_ms(router, "default_deadline_ms", defaults.default_deadline_s, low=1),
        deadline_margin_s=_ms(router, "deadline_margin_ms", defaults.deadline_margin_s, low=0),
        source=source,
    )


def _model(alias: str, node: _Node, env: Mapping[str, str]) -> ModelConfig:
    if not _NAME.fullmatch(alias):
        raise ConfigError(node.path, "an alias is 1-100 letters, digits and ._:/-")
    node.keys({"deployments"})
    deployments = node.child("deployments").list_items(min_items=1)
    return ModelConfig(
        alias=alias, deployments=tuple(_deployment(alias, item, env) for item in deployments)
    )


def _deployment(alias: str, node: _Node, env: Mapping[str, str]) -> DeploymentConfig:
    defaults = DeploymentConfig(id="-", alias=alias, provider="mock", model="-")
    node.keys(
        {
            "id",
            "provider",
            "model",
            "base_url",
            "api_key_env",
            "weight",
            "timeout_ms",
            "first_token_timeout_ms",
            "idle_timeout_ms",
            "max_concurrency",
            "input_price_per_million_tokens",
            "output_price_per_million_tokens",
            "default_max_tokens",
            "mock",
        }
    )
    deployment_id = node.string("id")
    if not _NAME.fullmatch(deployment_id):
        raise ConfigError(f"{node.path}.id", "an id is 1-100 letters, digits and ._:/-")
    provider = node.string("provider")
    if provider not in _PROVIDERS:
        raise ConfigError(f"{node.path}.provider", f"must be one of {', '.join(_PROVIDERS)}")
    model = node.string("model", default="mock" if provider == "mock" else None)
    base_url = node.string("base_url", default="") or None
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{node.path}.base_url", "must start with http:// or https://")
    api_key_env = node.string("api_key_env", default="") or None
    api_key = ""
    if api_key_env is not None:
        if not _ENV_NAME.fullmatch(api_key_env):
            raise ConfigError(f"{node.path}.api_key_env", "must be an environment variable name")
        api_key = env.get(api_key_env, "")
        if not api_key:
            raise ConfigError(f"{node.path}.api_key_env", f"{api_key_env} is not set")
    elif provider != "mock":
        raise ConfigError(f"{node.path}.api_key_env", "required for provider " + provider)
    mock_node = node.optional_child("mock")
    if mock_node is not None and provider != "mock":
        raise ConfigError(mock_node.path, "only for provider mock")
    return DeploymentConfig(
        id=deployment_id,
        alias=alias,
        provider=cast(ProviderName, provider),
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        api_key=api_key,
        weight=node.integer("weight", defaults.weight, low=0, high=1000),
        timeout_s=_ms(node, "timeout_ms", defaults.timeout_s, low=1),
        first_token_timeout_s=_ms(
            node, "first_token_timeout_ms", defaults.first_token_timeout_s, low=1
        ),
        idle_timeout_s=_ms(node, "idle_timeout_ms", defaults.idle_timeout_s, low=1),
        max_concurrency=node.optional_integer("max_concurrency", low=1),
        input_price_per_million_tokens=node.optional_number(
            "input_price_per_million_tokens", low=0
        ),
        output_price_per_million_tokens=node.optional_number(
            "output_price_per_million_tokens", low=0
        ),
        default_max_tokens=node.integer(
            "default_max_tokens", defaults.default_max_tokens, low=1, high=1_000_000
        ),
        mock=_mock(mock_node) if provider == "mock" else None,
    )


def _mock(node: _Node | None) -> MockOptions:
    defaults = MockOptions()
    if node is None:
        return defaults
    node.keys(
        {
            "latency_ms",
            "first_token_ms",
            "inter_token_ms",
            "reply",
            "filler_tokens",
            "error_rate",
            "seed",
        }
    )
    return MockOptions(
        latency_ms=node.number("latency_ms", defaults.latency_ms, low=0),
        first_token_ms=node.number("first_token_ms", defaults.first_token_ms, low=0),
        inter_token_ms=node.number("inter_token_ms", defaults.inter_token_ms, low=0),
        reply=node.string("reply", default=defaults.reply),
        filler_tokens=node.integer("filler_tokens", defaults.filler_tokens, low=0, high=100_000),
        error_rate=node.number("error_rate", defaults.error_rate, low=0, high=1),
        seed=node.integer("seed", defaults.seed),
    )


def _retries(node: _Node | None) -> RetryConfig:
    defaults = RetryConfig()
    if node is None:
        return defaults
    node.keys({"max_attempts", "backoff_base_ms", "backoff_max_ms"})
    base = _ms(node, "backoff_base_ms", defaults.backoff_base_s, low=0)
    most = _ms(node, "backoff_max_ms", defaults.backoff_max_s, low=0)
    if most < base:
        raise ConfigError(f"{node.path}.backoff_max_ms", "must be >= backoff_base_ms")
    return RetryConfig(
        max_attempts=node.integer("max_attempts", defaults.max_attempts, low=1, high=10),
        backoff_base_s=base,
        backoff_max_s=most,
    )


def _budget(node: _Node | None) -> RetryBudgetConfig:
    defaults = RetryBudgetConfig()
    if node is None:
        return defaults
    node.keys({"ratio", "min_per_second", "window_seconds"})
    return RetryBudgetConfig(
        ratio=node.number("ratio", defaults.ratio, low=0, high=10),
        min_per_second=node.number("min_per_second", defaults.min_per_second, low=0),
        window_s=node.number("window_seconds", defaults.window_s, low=1, high=3600),
    )


def _hedging(node: _Node | None) -> HedgingConfig:
    defaults = HedgingConfig()
    if node is None:
        return defaults
    node.keys(
        {"enabled", "percentile", "min_delay_ms", "max_delay_ms", "min_samples", "max_hedges"}
    )
    low = _ms(node, "min_delay_ms", defaults.min_delay_s, low=0)
    high = _ms(node, "max_delay_ms", defaults.max_delay_s, low=0)
    if high < low:
        raise ConfigError(f"{node.path}.max_delay_ms", "must be >= min_delay_ms")
    return HedgingConfig(
        enabled=node.boolean("enabled", defaults.enabled),
        percentile=node.number("percentile", defaults.percentile, low=1, high=100),
        min_delay_s=low,
        max_delay_s=high,
        min_samples=node.integer("min_samples", defaults.min_samples, low=1, high=10_000),
        max_hedges=node.integer("max_hedges", defaults.max_hedges, low=0, high=5),
    )


def _breaker(node: _Node | None) -> BreakerConfig:
    defaults = BreakerConfig()
    if node is None:
        return defaults
    node.keys(
        {
            "window_seconds",
            "buckets",
            "minimum_calls",
            "failure_rate",
            "consecutive_failures",
            "slow_call_rate",
            "slow_call_ms",
            "open_wait_ms",
            "open_wait_max_ms",
            "open_wait_multiplier",
            "half_open_probes",
            "half_open_timeout_ms",
            "default_cooldown_ms",
            "max_cooldown_ms",
        }
    )
    wait = _ms(node, "open_wait_ms", defaults.open_wait_s, low=0.001)
    wait_max = _ms(node, "open_wait_max_ms", max(defaults.open_wait_max_s, wait), low=0.001)
    if wait_max < wait:
        raise ConfigError(f"{node.path}.open_wait_max_ms", "must be >= open_wait_ms")
    return BreakerConfig(
        window_s=node.number("window_seconds", defaults.window_s, low=1, high=3600),
        buckets=node.integer("buckets", defaults.buckets, low=1, high=60),
        minimum_calls=node.integer("minimum_calls", defaults.minimum_calls, low=1),
        failure_rate=node.number("failure_rate", defaults.failure_rate, low=0.01, high=1),
        consecutive_failures=node.integer(
            "consecutive_failures", defaults.consecutive_failures, low=0, high=10_000
        ),
        slow_call_rate=node.number("slow_call_rate", defaults.slow_call_rate, low=0.01, high=1),
        slow_call_s=_ms(node, "slow_call_ms", defaults.slow_call_s, low=1),
        open_wait_s=wait,
        open_wait_max_s=wait_max,
        open_wait_multiplier=node.number(
            "open_wait_multiplier", defaults.open_wait_multiplier, low=1, high=100
        ),
        half_open_probes=node.integer("half_open_probes", defaults.half_open_probes, low=1),
        half_open_timeout_s=_ms(node, "half_open_timeout_ms", defaults.half_open_timeout_s, low=1),
        default_cooldown_s=_ms(node, "default_cooldown_ms", defaults.default_cooldown_s, low=0),
        max_cooldown_s=_ms(node, "max_cooldown_ms", defaults.max_cooldown_s, low=0),
    )


def _ms(node: _Node | None, key: str, default_s: float, *, low: float) -> float:
    """A duration written in milliseconds, returned in seconds."""
    if node is None:
        return default_s
    return node.number(key, default_s * 1000, low=low) / 1000


class _Node:
    """A value of the parsed YAML and its dotted path, with typed, checked accessors."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _mapping(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise ConfigError(self.path, "must be a mapping")
        return self.value

    def keys(self, allowed: set[str]) -> None:
        for key in self._mapping():
            if key not in allowed:
                raise ConfigError(self._at(str(key)), "unknown setting")

    def child(self, key: str) -> _Node:
        found = self.optional_child(key)
        if found is None:
            raise ConfigError(self._at(key), "required")
        return found

    def optional_child(self, key: str) -> _Node | None:
        value = self._mapping().get(key)
        return None if value is None else _Node(value, self._at(key))

    def mapping_items(self, *, min_items: int) -> list[tuple[str, _Node]]:
        mapping = self._mapping()
        if len(mapping) < min_items:
            raise ConfigError(self.path, f"needs at least {min_items} entry")
        return [(str(key), _Node(value, self._at(str(key)))) for key, value in mapping.items()]

    def list_items(self, *, min_items: int) -> list[_Node]:
        if not isinstance(self.value, list):
            raise ConfigError(self.path, "must be a list")
        if len(self.value) < min_items:
            raise ConfigError(self.path, f"needs at least {min_items} entry")
        return [_Node(item, f"{self.path}[{index}]") for index, item in enumerate(self.value)]

    def _raw(self, key: str) -> Any:
        return self._mapping().get(key)

    def string(self, key: str, *, default: str | None = None) -> str:
        value = self._raw(key)
        if value is None:
            if default is None:
                raise ConfigError(self._at(key), "required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(self._at(key), "must be a non-empty string")
        return value.strip()

    def number(
        self, key: str, default: float, *, low: float | None = None, high: float | None = None
    ) -> float:
        found = self.optional_number(key, low=low, high=high)
        return default if found is None else found

    def optional_number(
        self, key: str, *, low: float | None = None, high: float | None = None
    ) -> float | None:
        value = self._raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self._at(key), "must be a number")
        if not math.isfinite(value):
            raise ConfigError(self._at(key), "must be a finite number")
        self._check_bounds(key, value, low, high)
        return float(value)

    def integer(
        self, key: str, default: int, *, low: int | None = None, high: int | None = None
    ) -> int:
        found = self.optional_integer(key, low=low, high=high)
        return default if found is None else found

    def optional_integer(
        self, key: str, *, low: int | None = None, high: int | None = None
    ) -> int | None:
        value = self._raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self._at(key), "must be a whole number")
        self._check_bounds(key, value, low, high)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self._at(key), "must be true or false")
        return value

    def _check_bounds(self, key: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            raise ConfigError(self._at(key), f"must be >= {low:g}")
        if high is not None and value > high:
            raise ConfigError(self._at(key), f"must be <= {high:g}")
