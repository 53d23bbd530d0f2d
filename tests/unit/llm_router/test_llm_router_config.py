"""The router's YAML configuration: defaults, the built-in offline config, and one-line errors
that name the setting at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_router.config import BUILTIN_CONFIG_YAML, load_config, load_config_file, parse_config
from llm_router.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def _yaml(models: dict[str, object], **router: object) -> str:
    document: dict[str, object] = {"models": models}
    if router:
        document["router"] = router
    return yaml.safe_dump(document)


def _one(**deployment: object) -> dict[str, object]:
    return {"default": {"deployments": [{"id": "a", "provider": "mock"} | deployment]}}


def test_without_a_file_the_built_in_mock_config_serves_default_and_mock_fast() -> None:
    config = load_config(None, environ={})

    assert config.source == "built-in"
    assert [m.alias for m in config.models] == ["default", "mock-fast"]
    assert {d.provider for d in config.deployments()} == {"mock"}
    assert config.retry_budget.ratio == 0.1
    assert config.hedging.enabled


def test_the_example_deployment_config_is_valid() -> None:
    config = load_config_file(
        REPO / "deploy" / "llm-router.example.yaml",
        environ={"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-2"},
    )

    assert {d.provider for d in config.deployments()} == {"openai", "anthropic", "mock"}


def test_durations_are_milliseconds_in_the_file_and_seconds_in_the_model() -> None:
    config = parse_config(
        _yaml(
            _one(timeout_ms=2500, first_token_timeout_ms=300),
            hedging={"min_delay_ms": 10, "max_delay_ms": 80},
            breaker={"open_wait_ms": 1500},
        )
    )

    deployment = config.deployments()[0]
    assert (deployment.timeout_s, deployment.first_token_timeout_s) == (2.5, 0.3)
    assert (config.hedging.min_delay_s, config.hedging.max_delay_s) == (0.01, 0.08)
    assert config.breaker.open_wait_s == 1.5


def test_api_keys_come_from_the_named_variable_and_are_never_printed() -> None:
    config = parse_config(
        _yaml(
            {
                "default": {
                    "deployments": [
                        {"id": "o", "provider": "openai", "model": "m", "api_key_env": "KEY"}
                    ]
                }
            }
        ),
        environ={"KEY": "sk-very-secret"},
    )

    assert config.deployments()[0].api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(config)


D0 = "models.default.deployments[0]"
OPENAI_NO_KEY = {"id": "o", "provider": "openai", "model": "m", "api_key_env": "NOPE_KEY"}
TWO_WITH_NEGATIVE = [{"id": "a", "provider": "mock"}, {"id": "b", "provider": "mock", "weight": -1}]
SAME_ID = {"deployments": [{"id": "x", "provider": "mock"}]}
OPENAI_WITH_MOCK = {"id": "o", "provider": "openai", "model": "m", "api_key_env": "K", "mock": {}}
BAD_CONFIGS = [
    pytest.param(
        _yaml({"default": {"deployments": TWO_WITH_NEGATIVE}}),
        "models.default.deployments[1].weight: must be >= 0",
        id="negative weight",
    ),
    pytest.param(_yaml(_one(wieght=2)), f"{D0}.wieght: unknown setting", id="misspelt key"),
    pytest.param(
        _yaml(_one(provider="azure")),
        f"{D0}.provider: must be one of openai, anthropic, mock",
        id="unknown provider",
    ),
    pytest.param(
        _yaml({"default": {"deployments": [OPENAI_NO_KEY]}}),
        f"{D0}.api_key_env: NOPE_KEY is not set",
        id="unset key variable",
    ),
    pytest.param(
        _yaml({"default": {"deployments": [{"id": "o", "provider": "anthropic", "model": "m"}]}}),
        f"{D0}.api_key_env: required for provider anthropic",
        id="no key variable",
    ),
    pytest.param(
        _yaml({"a": SAME_ID, "b": SAME_ID}),
        "models.b.deployments[0].id: 'x' is already used by models.a.deployments[0].id",
        id="duplicate id",
    ),
    pytest.param(
        _yaml(_one(timeout_ms="fast")), f"{D0}.timeout_ms: must be a number", id="bad timeout"
    ),
    pytest.param(
        _yaml(_one(base_url="ftp://x")),
        f"{D0}.base_url: must start with http:// or https://",
        id="bad base url",
    ),
    pytest.param(
        _yaml(_one(), hedging={"min_delay_ms": 100, "max_delay_ms": 50}),
        "router.hedging.max_delay_ms: must be >= min_delay_ms",
        id="hedge bounds reversed",
    ),
    pytest.param(
        _yaml(_one(), breaker={"failure_rate": 1.5}),
        "router.breaker.failure_rate: must be <= 1",
        id="failure rate above 1",
    ),
    pytest.param(
        _yaml(_one(), retries={"max_attempts": 0}),
        "router.retries.max_attempts: must be >= 1",
        id="zero attempts",
    ),
    pytest.param(
        _yaml(_one(), retry_budget={"ratio": "lots"}),
        "router.retry_budget.ratio: must be a number",
        id="non-numeric ratio",
    ),
    pytest.param(
        _yaml({"default": {"deployments": []}}),
        "models.default.deployments: needs at least 1 entry",
        id="no deployments",
    ),
    pytest.param(yaml.safe_dump({"router": {}}), "models: required", id="no models"),
    pytest.param("models: [unclosed", "not valid YAML at line 1", id="not yaml"),
    pytest.param(
        _yaml(_one(mock={"latency_ms": -5})),
        f"{D0}.mock.latency_ms: must be >= 0",
        id="negative mock latency",
    ),
    pytest.param(
        _yaml({"default": {"deployments": [OPENAI_WITH_MOCK]}}),
        f"{D0}.mock: only for provider mock",
        id="mock options elsewhere",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_an_invalid_config_is_refused_with_one_line_naming_the_setting(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, environ={"K": "k"})

    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_an_invalid_file_names_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(_yaml(_one(weight=-3)))

    with pytest.raises(ConfigError) as raised:
        load_config_file(path, environ={})

    assert str(raised.value) == f"{path}: models.default.deployments[0].weight: must be >= 0"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_file(tmp_path / "absent.yaml", environ={})

    assert "cannot read" in str(raised.value)


def test_the_built_in_yaml_is_the_documented_offline_default() -> None:
    assert "provider: mock" in BUILTIN_CONFIG_YAML
